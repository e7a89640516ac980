// Help text that reflows to the terminal: oclif wraps each line of a description to the
// terminal's width, so a line break inside a paragraph shows as a ragged break on any terminal
// but the one it was written for. `prose` lets a command's source wrap its text as it likes:
// lines of a paragraph are joined, blank lines between paragraphs kept, and a list item
// (`- text`, `1. text`) starts a line of its own (its indented continuation lines join it).

const LIST_ITEM = /^(?:[-*]|\d+\.)\s/

/** The text with every paragraph and list item on one line. */
export function reflow(text: string): string {
  return text
    .trim()
    .split(/\n[ \t]*\n/)
    .map((para) =>
      para
        .split('\n')
        .map((l) => l.trim())
        .reduce<string[]>((lines, l) => {
          if (!lines.length || LIST_ITEM.test(l)) lines.push(l)
          else lines[lines.length - 1] += ` ${l}`
          return lines
        }, [])
        .join('\n'),
    )
    .join('\n\n')
}

/** Template tag: `prose\`...\`` is the template's text, reflowed. */
export function prose(strings: TemplateStringsArray, ...values: unknown[]): string {
  return reflow(strings.reduce((acc, s, i) => acc + String(values[i - 1]) + s))
}
