// The published inventory JSON Schema: current with the zod schema, and it accepts what
// murderctl accepts (the README's example) and rejects what murderctl rejects field by field.
import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {z} from 'zod'
import {INVENTORY_SCHEMA_PATH, renderInventorySchema} from '../../../src/inventory/json-schema.js'
import {parseInventory} from '../../../src/inventory/load.js'
import {InventoryError} from '../../../src/errors.js'

const root = resolve(import.meta.dirname, '../../..')
const committed = readFileSync(join(root, INVENTORY_SCHEMA_PATH), 'utf8')
const validator = z.fromJSONSchema(JSON.parse(committed))
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const example = readme.slice(readme.indexOf('## Inventory')).match(/```yaml\n([\s\S]*?)```/)![1]

describe('inventory JSON Schema', () => {
  it('is the one the zod schema gives (regenerate: npx tsx scripts/write-schemas.ts)', () => {
    expect(committed).toBe(renderInventorySchema())
  })

  it('accepts the README example and refuses a typo in a field name or a bad role', () => {
    const doc = parse(example)
    expect(validator.safeParse(doc).success).toBe(true)
    expect(validator.safeParse({...doc, knownhosts: 'x'}).success).toBe(false)
    expect(validator.safeParse({...doc, hosts: [{...doc.hosts[0], role: 'master'}]}).success).toBe(false)
  })
})

describe('inventory errors name the YAML line', () => {
  const text = [
    'name: prod',
    'mode: standard',
    'hosts:',
    '  - {name: mupdate, role: mupdate-master, address: 10.0.0.1}',
    '  - name: b1',
    '    role: backend',
    '    address: 10.0.0.2',
    '    ssh: {port: "twenty-two"}',
    '',
  ].join('\n')

  it('for a schema error, the line of the offending value', () => {
    expect(() => parseInventory(text, '/etc/murderctl/murder.yaml')).toThrow(InventoryError)
    expect(() => parseInventory(text, '/etc/murderctl/murder.yaml')).toThrow(/^\/etc\/murderctl\/murder\.yaml: line 8: hosts\[1\]\.ssh\.port: /)
  })

  it('for a YAML syntax error, the line it is on', () => {
    expect(() => parseInventory('name: prod\nmode: [standard\n', '/x.yaml')).toThrow(/^\/x\.yaml \(line \d\): not valid YAML/)
  })
})
