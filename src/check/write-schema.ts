// Writes the published JSON Schema of `murderctl check --format json` from the zod model:
//   npx tsx src/check/write-schema.ts [schemas/check-report.schema.json]
// test/unit/check/schema.test.ts fails when the committed file differs from a fresh one.
import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'
import {checkReportJsonSchema} from './model.js'

export const CHECK_REPORT_SCHEMA_PATH = 'schemas/check-report.schema.json'

/** The schema file's exact text: 2-space JSON and a final newline. */
export function renderCheckReportSchema(): string {
  return `${JSON.stringify(checkReportJsonSchema(), null, 2)}\n`
}

/** Write the schema to `path` (relative paths are from the current directory); returns the absolute path. */
export function writeCheckReportSchema(path: string = CHECK_REPORT_SCHEMA_PATH): string {
  const abs = resolve(path)
  mkdirSync(dirname(abs), {recursive: true})
  writeFileSync(abs, renderCheckReportSchema())
  return abs
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.stdout.write(`${writeCheckReportSchema(process.argv[2])}\n`)
}
