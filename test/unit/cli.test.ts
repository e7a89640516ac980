// The built CLI as a user runs it: command discovery from dist, and the README's inventory.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const run = (args: string[]) => execa('node', [join(root, 'bin/run.js'), ...args], {reject: false, env: {NODE_ENV: 'production'}})

describe('the built murderctl', () => {
  it('lists every command in --help', async () => {
    const r = await run(['--help'])
    expect(r.exitCode).toBe(0)
    for (const c of ['status', 'sync-backends', 'recover-master', 'backup', 'check']) expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\s`, 'm'))
    expect(r.stdout).toMatch(/inventory\s/)
    expect(r.stdout).toMatch(/lab\s/)
  })

  it('validates the inventory example in the README', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const block = readme.slice(readme.indexOf('## Inventory')).match(/```yaml\n([\s\S]*?)```/)![1]
    const path = join(mkdtempSync(join(tmpdir(), 'inv-')), 'murder.yaml')
    writeFileSync(path, block)
    const r = await run(['inventory', 'validate', '-i', path, '--schema-only', '--json'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    // On this machine the files it names are not there: said, with the inventory's exit code.
    const files = await run(['inventory', 'validate', '-i', path, '--json'])
    expect(files.exitCode).toBe(3)
    expect(JSON.parse(files.stdout).error.message).toMatch(/identity file .*murder_ed25519 does not exist/)
    expect(JSON.parse(r.stdout)).toMatchObject({
      name: 'prod',
      mode: 'standard',
      hosts: expect.arrayContaining([expect.objectContaining({name: 'b1r', servername: 'b1', replicaOf: 'b1'})]),
    })
  })

  it("says what is wrong with bad flags, with oclif's usage exit code", async () => {
    const r = await run(['status', '--no-such-flag'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/no-such-flag/)
  })

  it('follows the usual CLI conventions: -h, -V, help COMMAND, a suggestion for a mistyped command', async () => {
    expect((await run(['-V'])).stdout).toMatch(/^murderctl\/\d+\.\d+\.\d+ .*node-v20/)
    const h = await run(['recover-master', '-h'])
    expect(h.exitCode).toBe(0)
    expect(h.stdout).toMatch(/^USAGE/m)
    const help = await run(['help', 'sync-backends'])
    expect(help.exitCode).toBe(0)
    expect(help.stdout).toMatch(/murderctl sync-backends/)
    const typo = await run(['stauts'])
    expect(typo.exitCode).toBe(127)
    expect(typo.stderr).toBe('murderctl: "stauts" is not a murderctl command. Did you mean "status"? See murderctl help.')
    expect((await run(['lab', 'upp'])).stderr).toMatch(/Did you mean "lab up"\?/)
    expect((await run(['zzzzzzzz'])).stderr).not.toMatch(/Did you mean/)
  })
})
