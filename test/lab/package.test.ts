// What operators install: the .deb with its own Node 20, installed on this Debian machine with
// dpkg, then run against the lab exactly as an operator would run it from PATH.
import {mkdtempSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {lab} from './helpers.js'

const ROOT = resolve(import.meta.dirname, '../..')
const out = mkdtempSync(join(tmpdir(), 'murderctl-pkg-'))
let installed = false

describe('packages', () => {
  beforeAll(async () => {
    await execa('bash', [join(ROOT, 'scripts/package.sh'), out], {cwd: ROOT})
  }, 600_000)
  afterAll(async () => {
    if (installed) await execa('dpkg', ['-r', 'murderctl'], {reject: false})
  })

  it('the npm package holds the built CLI, its manifest and playbooks, without source maps or tests', async () => {
    const files = (await execa('tar', ['-tzf', join(out, 'murderctl-0.1.0.tgz')])).stdout.split('\n')
    for (const f of [
      'package/bin/run.js',
      'package/oclif.manifest.json',
      'package/dist/commands/recover-master.js',
      'package/dist/src/index.js',
      'package/playbooks/recover-master-standard-backends.yaml',
    ])
      expect(files).toContain(f)
    expect(files.filter((f) => f.endsWith('.map') || f.includes('/test/') || f.endsWith('.ts'))).toEqual([])
  })

  it('the .deb installs with dpkg and runs with its bundled Node against the lab', async () => {
    const deb = readdirSync(out).find((f) => f.endsWith('.deb'))!
    await execa('dpkg', ['-i', join(out, deb)])
    installed = true
    const version = await execa('/usr/bin/murderctl', ['--version'], {env: {PATH: '/usr/bin:/bin'}})
    expect(version.stdout).toMatch(/^murderctl\/0\.1\.0 linux-x64 node-v20\./)
    const status = await execa('/usr/bin/murderctl', ['status', '-i', lab().inventory, '--json', '--no-counts'], {reject: false, env: {PATH: '/usr/bin:/bin'}})
    expect(status.exitCode, status.stderr).toBe(0)
    expect(
      JSON.parse(status.stdout)
        .hosts.map((h: any) => h.name)
        .sort(),
    ).toEqual(['b1', 'b1r', 'b2', 'fe1', 'fe2', 'mupdate'])
  })
})
