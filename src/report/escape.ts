// Everything a report shows may be user data (mailbox names, paths, error text): escape it for
// the format it lands in, once, here.

/** Text for HTML element content and attribute values (double- or single-quoted). */
export function html(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!)
}

/** Markdown inline text: every punctuation mark that could start markup is backslash-escaped. */
export function md(s: unknown): string {
  return String(s ?? '')
    .replace(/[\r\n]+/g, ' ')
    .replace(/[\\`*_{}[\]()#!|~]/g, (c) => `\\${c}`)
    .replace(/[&<>]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'})[c]!)
}

/** A Markdown code span (paths, checksums, commands); `|` escaped so it cannot split a table cell. */
export function mdCode(s: unknown): string {
  const text = String(s ?? '').replace(/[\r\n]+/g, ' ')
  if (!text) return ''
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length))
  const fence = '`'.repeat(longest + 1)
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${text.replace(/\|/g, '\\|')}${pad}${fence}`
}

/** A fenced code block that no line of its content can close. */
export function mdFence(lines: string[], info = 'text'): string {
  const longest = Math.max(2, ...lines.flatMap((l) => [...l.matchAll(/`+/g)].map((m) => m[0].length)))
  const fence = '`'.repeat(longest + 1)
  return [`${fence}${info}`, ...lines, fence].join('\n')
}
