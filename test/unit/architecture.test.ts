// The layers point one way: commands -> services -> engine -> host adapters -> ssh. This reads
// every import in src/ and commands/ and fails on an upward import or a circle between files.
import {readdirSync, readFileSync} from 'node:fs'
import {dirname, join, normalize, relative, resolve} from 'node:path'
import {describe, expect, it} from 'vitest'

const ROOT = resolve(import.meta.dirname, '../..')

/** Higher may import lower, never the reverse; a folder may import itself. */
const RANK: Record<string, number> = {
  commands: 9,
  'src/cli': 8,
  'src/report': 7.5,
  'src/services': 7,
  // The lab is a tool beside the services (it sets up hosts); nothing but commands uses it.
  'src/lab': 7,
  'src/check': 6,
  'src/engine': 5,
  'src/store': 4,
  'src/host': 3,
  'src/imap': 3,
  'src/cyrus': 2,
  'src/ssh': 2,
  'src/inventory': 1,
  'src/util': 0.5,
  'src/errors.ts': 0,
  'src/index.ts': 9,
}

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), {withFileTypes: true}).flatMap((e) => {
    const p = join(dir, e.name)
    return e.isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

const layerOf = (file: string) => {
  const key = Object.keys(RANK)
    .filter((k) => file === k || file.startsWith(`${k}/`))
    .sort((a, b) => b.length - a.length)[0]
  if (key === undefined) throw new Error(`${file} is in no layer: add its folder to RANK`)
  return key
}

function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8')
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) =>
    relative(ROOT, normalize(join(ROOT, dirname(file), m[1]))).replace(/\.js$/, '.ts'),
  )
}

const all = [...files('src'), ...files('commands')]
const graph = new Map(all.map((f) => [f, imports(f)]))

describe('architecture', () => {
  it('no module imports a layer above its own', () => {
    const upward: string[] = []
    for (const [f, deps] of graph)
      for (const d of deps) {
        const a = layerOf(f)
        const b = layerOf(d)
        if (a !== b && RANK[b] >= RANK[a]) upward.push(`${f} -> ${d}`)
      }
    expect(upward).toEqual([])
  })

  it('no circle between modules', () => {
    const cycles: string[] = []
    const state = new Map<string, 'open' | 'done'>()
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '))
        return
      }
      state.set(f, 'open')
      for (const d of graph.get(f) ?? []) visit(d, [...path, f])
      state.set(f, 'done')
    }
    for (const f of graph.keys()) visit(f, [])
    expect(cycles).toEqual([])
  })
})
