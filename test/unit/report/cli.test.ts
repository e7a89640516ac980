// The built `murderctl report` on a state dir holding the lab journals: --list, --last, a run
// by id in each format, and a run id that is not one. Offline: no host is contacted.
import {cpSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {beforeAll, describe, expect, it} from 'vitest'
import {FIXTURES, JOURNALS} from './fixtures.js'
import {lintMarkdown} from './markdownlint.js'

const root = resolve(import.meta.dirname, '../../..')
const dir = mkdtempSync(join(tmpdir(), 'murderctl-report-cli-'))
const inv = join(dir, 'murder.yaml')
const run = (args: string[]) => execa('node', [join(root, 'bin/run.js'), 'report', '-i', inv, ...args], {reject: false, env: {NODE_ENV: 'production'}})
const runIdOf = (name: string) => JSON.parse(readFileSync(join(JOURNALS, name, 'journal.jsonl'), 'utf8').split('\n')[0]).run as string

describe('murderctl report (built CLI, offline)', () => {
  beforeAll(() => {
    // The stopped-at-diff fixture is the completed run earlier in its life: same id, left out.
    for (const f of FIXTURES.filter((x) => x !== 'recover-master-stopped-at-diff'))
      cpSync(join(JOURNALS, f), join(dir, 'state', 'runs', runIdOf(f)), {recursive: true})
    writeFileSync(
      inv,
      'name: lab\nmode: standard\nstateDir: state\nknownHosts: known_hosts\nhosts:\n  - {name: mupdate, role: mupdate-master, address: 127.0.0.1}\n  - {name: b1, role: backend, address: 127.0.0.2}\n',
    )
  })

  it('--list: newest first, one line each with the outcome', async () => {
    const r = await run(['--list'])
    expect(r.exitCode, r.stderr).toBe(0)
    const lines = r.stdout.split('\n').slice(2)
    expect(lines.map((l) => l.split(/\s{2,}/).slice(1, 3))).toEqual([
      ['failover', 'interrupted'],
      ['failover', 'completed'],
      ['recover-master', 'interrupted'],
      ['recover-master', 'completed'],
      ['recover-master', 'failed'],
      ['sync-backends', 'completed'],
    ])
    const json = await run(['--list', '--json'])
    expect(JSON.parse(json.stdout)[3]).toMatchObject({run: runIdOf('recover-master-completed'), outcome: 'completed'})
  })

  it('--last --offline writes the newest run as Markdown that lints clean, or HTML', async () => {
    const md = join(dir, 'r.md')
    const r = await run(['--last', '--offline', '--out', md])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stderr).toContain(`report of ${runIdOf('failover-stopped-after-start')} (interrupted) written to ${md}`)
    expect(lintMarkdown(readFileSync(md, 'utf8'))).toEqual([])
    const html = await run([runIdOf('sync-backends-completed'), '--offline', '--format', 'html'])
    expect(html.stdout).toMatch(/^<!DOCTYPE html>/)
  })

  it('refuses a run id that is a path or unknown, with a hint', async () => {
    for (const id of ['../../etc', 'nope']) {
      const r = await run([id, '--offline', '--json'])
      expect(r.exitCode).toBe(3)
      expect(JSON.parse(r.stdout).error.hint).toMatch(/report --list/)
    }
  })
})
