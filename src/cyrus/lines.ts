// Byte-faithful line splitting for the config editors: every line keeps its own ending, so
// joining the pieces gives back the exact input (CRLF, a missing final newline, stray CRs).

export type LineEnding = '' | '\n' | '\r\n'

export interface PhysicalLine {
  /** The line without its ending (a lone '\r' inside a line stays part of the text). */
  text: string
  eol: LineEnding
}

export function splitLines(text: string): PhysicalLine[] {
  const lines: PhysicalLine[] = []
  let start = 0
  while (start < text.length) {
    const nl = text.indexOf('\n', start)
    if (nl === -1) {
      lines.push({text: text.slice(start), eol: ''})
      break
    }
    if (nl > start && text.charCodeAt(nl - 1) === 13) lines.push({text: text.slice(start, nl - 1), eol: '\r\n'})
    else lines.push({text: text.slice(start, nl), eol: '\n'})
    start = nl + 1
  }
  return lines
}

export function joinLines(lines: readonly PhysicalLine[]): string {
  let out = ''
  for (const l of lines) out += l.text + l.eol
  return out
}

/** The ending new lines should get: CRLF when the file already uses it, else LF. */
export function dominantEol(lines: readonly PhysicalLine[]): '\n' | '\r\n' {
  let crlf = 0
  let lf = 0
  for (const l of lines) {
    if (l.eol === '\r\n') crlf++
    else if (l.eol === '\n') lf++
  }
  return crlf > lf ? '\r\n' : '\n'
}

/** C isspace() in the "C" locale, which is what Cyrus' Uisspace() tests. */
export function isCSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f'
}

export function trimCSpace(s: string): string {
  let a = 0
  let b = s.length
  while (a < b && isCSpace(s[a])) a++
  while (b > a && isCSpace(s[b - 1])) b--
  return s.slice(a, b)
}

/** First 80 characters of a line, for error messages. */
export function excerpt(line: string): string {
  return JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line)
}
