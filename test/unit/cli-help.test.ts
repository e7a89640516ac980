// Help as users see it: text that reflows to their terminal, and each command showing the flags
// it uses (the SSH flags, defined once, on every command that connects and on no other).
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative, resolve} from 'node:path'
import {Config} from '@oclif/core'
import {execa} from 'execa'
import {beforeAll, describe, expect, it} from 'vitest'
import {reflow} from '../../src/cli/prose.js'

const root = resolve(import.meta.dirname, '../..')
const run = (args: string[]) => execa('node', [join(root, 'bin/run.js'), ...args], {reject: false, env: {NODE_ENV: 'production'}})
const SSH_FLAGS = ['concurrency', 'accept-new-host-keys', 'ssh-config']

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}
/** Command id of a source file: commands/pair/status.ts -> pair:status. */
const idOf = (file: string) => relative(join(root, 'commands'), file).replace(/\.ts$/, '').split('/').join(':')

describe('help text', () => {
  let config: Config
  beforeAll(async () => {
    config = await Config.load(root)
  })

  it('has no line break inside a paragraph of any description (oclif wraps to the terminal)', () => {
    const texts = config.commands.flatMap((c) => [
      [`${c.id} summary`, c.summary],
      [`${c.id} description`, c.description],
      ...Object.entries(c.flags).flatMap(([n, f]) => [
        [`${c.id} --${n} summary`, f.summary],
        [`${c.id} --${n} description`, f.description],
      ]),
      ...Object.entries(c.args).map(([n, a]) => [`${c.id} arg ${n}`, a.description]),
    ])
    expect(texts.length).toBeGreaterThan(100)
    // A line may end a paragraph (blank line after) or stand before a list item; nothing else.
    const broken = texts.filter(([, t]) => t && /\n(?![ \t]*\n)(?!(?:[-*]|\d+\.)\s)/.test(t.replace(/\n[ \t]*\n/g, '\u0000'))).map(([w]) => w)
    expect(broken).toEqual([])
  })

  it('prose joins the lines of a paragraph and keeps paragraphs and list items', () => {
    expect(reflow('  One line\n  goes on.\n\nList:\n- a item\n  continued\n- b\n1. c\n')).toBe('One line goes on.\n\nList:\n- a item continued\n- b\n1. c')
  })

  it('reflows to the width of the terminal', async () => {
    const narrow = await execa('node', [join(root, 'bin/run.js'), 'sync-backends', '--help'], {
      reject: false,
      env: {NODE_ENV: 'production', OCLIF_COLUMNS: '60'},
    })
    const wide = await execa('node', [join(root, 'bin/run.js'), 'sync-backends', '--help'], {
      reject: false,
      env: {NODE_ENV: 'production', OCLIF_COLUMNS: '150'},
    })
    const description = (s: string) => s.slice(s.indexOf('DESCRIPTION'), s.indexOf('EXAMPLES')).split('\n').slice(1, -1)
    expect(Math.max(...description(narrow.stdout).map((l) => l.length))).toBeLessThanOrEqual(60)
    expect(Math.max(...description(wide.stdout).map((l) => l.length))).toBeGreaterThan(100)
  })
})

describe('flags per command', () => {
  const files = sources(join(root, 'commands'))
  const connecting = files.filter((f) => /\bwithMurder\(/.test(readFileSync(f, 'utf8'))).map(idOf)
  let config: Config
  beforeAll(async () => {
    config = await Config.load(root)
  })

  it('the SSH flags are on every command that connects to hosts, and on no other', () => {
    expect(connecting.length).toBeGreaterThan(10)
    for (const c of config.commands.filter((c) => files.some((f) => idOf(f) === c.id))) {
      const has = SSH_FLAGS.filter((f) => f in c.flags)
      expect([c.id, has], c.id).toEqual([c.id, connecting.includes(c.id) ? SSH_FLAGS : []])
    }
  })

  it('the host-key flags are defined once (src/cli), not per command', () => {
    for (const f of files) expect(readFileSync(f, 'utf8'), f).not.toMatch(/'(accept-new-host-keys|ssh-config|concurrency)': Flags\./)
    const summaries = new Set(config.commands.filter((c) => connecting.includes(c.id)).map((c) => c.flags['accept-new-host-keys']!.summary))
    expect(summaries.size).toBe(1)
  })

  it('a bad flag value is a usage problem, never "a murderctl bug" (check: UNKNOWN, as plugins do)', async () => {
    const r = await run(['check', '-t', '1'])
    expect(r.exitCode).toBe(3)
    expect(r.stdout).toMatch(/^MURDER UNKNOWN: Parsing --timeout Expected an integer greater than or equal to 2 but received: 1/)
    expect(r.stdout).not.toMatch(/bug/)
  })

  it('murderctl X --help shows them where they apply', async () => {
    const status = await run(['status', '--help'])
    expect(status.stdout).toMatch(/^SSH FLAGS\n(?:.*\n)*?.*-F, --ssh-config=<value>/m)
    expect(status.stdout).toMatch(/--accept-new-host-keys/)
    expect(status.stdout).toMatch(/--concurrency=<value>/)
    for (const cmd of [
      ['lab', 'up'],
      ['inventory', 'validate'],
    ]) {
      const h = await run([...cmd, '--help'])
      expect(h.exitCode).toBe(0)
      expect(h.stdout).not.toMatch(/--concurrency|--accept-new-host-keys|--ssh-config|SSH FLAGS/)
    }
  })
})
