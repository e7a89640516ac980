// Writes the published JSON Schemas from the zod models (check's report, the inventory):
//   npx tsx scripts/write-schemas.ts
import {writeFileSync} from 'node:fs'
import {resolve} from 'node:path'
import {CHECK_REPORT_SCHEMA_PATH, renderCheckReportSchema} from '../src/check/write-schema.js'
import {INVENTORY_SCHEMA_PATH, renderInventorySchema} from '../src/inventory/json-schema.js'

const root = resolve(import.meta.dirname, '..')
for (const [path, text] of [
  [CHECK_REPORT_SCHEMA_PATH, renderCheckReportSchema()],
  [INVENTORY_SCHEMA_PATH, renderInventorySchema()],
] as const) {
  writeFileSync(resolve(root, path), text)
  process.stdout.write(`${path}\n`)
}
