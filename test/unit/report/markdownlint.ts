// The report's Markdown checked by markdownlint: default rules, except line length (tables and
// checksums are long by nature) and inline HTML other than the <details> folds it uses.
import {lint} from 'markdownlint/sync'

export function lintMarkdown(text: string): string[] {
  const results = lint({
    strings: {report: text},
    config: {default: true, MD013: false, MD033: {allowed_elements: ['details', 'summary']}, MD024: {siblings_only: true}},
  })
  return results.report.map(
    (e) => `${e.lineNumber}: ${e.ruleNames.join('/')} ${e.ruleDescription}${e.errorDetail ? ` (${e.errorDetail})` : ''}: ${e.errorContext ?? ''}`,
  )
}
