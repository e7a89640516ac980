// The inventory's JSON Schema, generated from the zod schema so editors (yaml-language-server,
// VS Code, IntelliJ) complete and check inventories as murderctl itself does:
//   npx tsx scripts/write-schemas.ts
// test/unit/inventory/json-schema.test.ts fails when the committed file differs from a fresh one.
import {z} from 'zod'
import {InventoryFile} from './schema.js'

export const INVENTORY_SCHEMA_PATH = 'schemas/inventory.schema.json'

export function renderInventorySchema(): string {
  // io: input, since an inventory may leave out whatever has a default.
  const schema = z.toJSONSchema(InventoryFile, {target: 'draft-2020-12', io: 'input', unrepresentable: 'any'}) as Record<string, unknown>
  const doc = {
    $schema: schema.$schema,
    $id: 'https://murderctl.invalid/schemas/inventory.schema.json',
    title: 'murderctl inventory',
    description:
      'The hosts of one Cyrus murder and how murderctl reaches them. Cross-field rules (one mupdate master, replicaOf naming a backend, unique names) are checked by murderctl inventory validate.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  }
  return `${JSON.stringify(doc, null, 2)}\n`
}
