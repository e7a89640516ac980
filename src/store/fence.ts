// FENCED marks: a pair member that was master when a hard failover promoted the other one. It may
// hold changes the new master never got, so nothing replicates towards it and nothing lets it
// rejoin until reconcile has compared it with the new master and lifted the mark.
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'

export const FenceMark = z.object({
  pair: z.string(),
  member: z.string(),
  /** The member promoted in its place. */
  promoted: z.string(),
  at: z.string(),
  run: z.string(),
  /** The cutoff file: the new master's per-mailbox state at promotion. */
  cutoff: z.string().optional(),
  reason: z.string(),
})
export type FenceMark = z.infer<typeof FenceMark>

const fenceDir = (stateDir: string) => join(stateDir, 'fenced')
const fencePath = (stateDir: string, member: string) => join(fenceDir(stateDir), `${member}.json`)

export function writeFence(stateDir: string, mark: FenceMark): string {
  mkdirSync(fenceDir(stateDir), {recursive: true})
  const p = fencePath(stateDir, mark.member)
  writeFileSync(`${p}.tmp`, `${JSON.stringify(mark, null, 2)}\n`)
  renameSync(`${p}.tmp`, p)
  return p
}

export function readFence(stateDir: string, member: string): FenceMark | null {
  const p = fencePath(stateDir, member)
  return existsSync(p) ? FenceMark.parse(JSON.parse(readFileSync(p, 'utf8'))) : null
}

export function listFences(stateDir: string): FenceMark[] {
  const d = fenceDir(stateDir)
  if (!existsSync(d)) return []
  return readdirSync(d)
    .filter((f) => f.endsWith('.json'))
    .map((f) => FenceMark.parse(JSON.parse(readFileSync(join(d, f), 'utf8'))))
}

/** Lift a mark (reconcile does this once the member agrees with the new master); the mark is kept beside, renamed. */
export function liftFence(stateDir: string, member: string, run: string): boolean {
  const p = fencePath(stateDir, member)
  if (!existsSync(p)) return false
  renameSync(p, `${p}.lifted-${run}`)
  return true
}
