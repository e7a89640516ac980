// countScript's keep: the dump written to a file and read from it, as a host's shell runs it (a
// stand-in ctl_mboxlist prints a captured dump): the kept file is the dump byte for byte, the
// figures are those of the plain script, and ctl_mboxlist's exit status still comes through.
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {createCountReader} from '../../../src/cyrus/mboxlist-count.js'
import {countScript} from '../../../src/host/mboxlist.js'

const dump = readFileSync(join(import.meta.dirname, '../../fixtures/lab/dump-b1.txt'), 'utf8')

function host(status: number) {
  const dir = mkdtempSync(join(tmpdir(), 'kept-dump-'))
  writeFileSync(join(dir, 'dump'), dump)
  const ctl = join(dir, 'ctl_mboxlist')
  writeFileSync(ctl, `#!/bin/sh\ncat '${join(dir, 'dump')}'\nexit ${status}\n`)
  chmodSync(ctl, 0o755)
  return {dir, ctl}
}

function read(script: string) {
  const names: string[] = []
  const reader = createCountReader({host: 'b1', onName: (n, remote) => names.push(`${remote ? 'R' : 'N'} ${n}`)})
  const out = execFileSync('sh', ['-c', script], {encoding: 'utf8'})
  for (const l of out.replace(/\n$/, '').split('\n')) reader.push(l)
  return {exit: reader.exitLine, names, figures: reader.end()}
}

describe('countScript keep', () => {
  it('keeps the dump byte for byte, with the same names and figures as the plain read', () => {
    const {dir, ctl} = host(0)
    const kept = join(dir, 'kept')
    const plain = read(countScript(ctl, undefined, {names: true}))
    const keeping = read(countScript(ctl, undefined, {names: true, keep: kept}))
    expect(keeping).toEqual(plain)
    expect(keeping.names.length).toBeGreaterThan(0)
    expect(readFileSync(kept, 'utf8')).toBe(dump)
  })

  it("passes ctl_mboxlist's own exit status on", () => {
    const {dir, ctl} = host(3)
    const out = execFileSync('sh', ['-c', countScript(ctl, undefined, {names: true, keep: join(dir, 'kept')})], {encoding: 'utf8'})
    expect(out).toMatch(/^EXIT 3$/m)
  })
})
