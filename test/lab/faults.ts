// Faults injected into a lab host behind murderctl's back, and the "nothing lost" check, shared
// by the fault matrices (standard and unified): every helper works on the file's lab (lab()).
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {expect} from 'vitest'
import {parse, stringify} from 'yaml'
import {isLiveLocal} from '../../src/cyrus/mboxlist-dump.js'
import {readLabState} from '../../src/lab/lab.js'
import {assertAllJournalCopiesIntact, CTL, lab, labHost, murderctl, onHost} from './helpers.js'

export const BACKENDS = ['b1', 'b2']

/** What a fault matrix prints at the end, for the README's table. */
export interface Figures {
  runs: number
  faults: number
  resumed: number
  rolledBack: number
  mailboxesLost: number
  copiesChecked: number
}
export const newFigures = (): Figures => ({runs: 0, faults: 0, resumed: 0, rolledBack: 0, mailboxesLost: 0, copiesChecked: 0})

export const svc = () => join(lab().dir, 'bin', 'cyrus-service')
const sshdConfig = (h: string) => join(lab().dir, 'hosts', h, 'sshd_config')

/** Live local mailboxes of a host, sorted. */
export async function liveLocal(host: string): Promise<string[]> {
  const dump = JSON.parse((await onHost(host, `${CTL} -d`)).stdout) as Record<string, {mbtype: string; server?: string}>
  return Object.entries(dump)
    .filter(([, e]) => isLiveLocal(e))
    .map(([n]) => n)
    .sort()
}

/** Every backend's live local mailboxes. */
export async function snapshot(): Promise<Record<string, string[]>> {
  return Object.fromEntries(await Promise.all(BACKENDS.map(async (b) => [b, await liveLocal(b)] as const)))
}

/** Nothing lost: every backend's local set as before, the master holds their union exactly, every journaled copy intact. */
export async function assertNothingLost(before: Record<string, string[]>, figures: Figures): Promise<void> {
  const union = new Set<string>()
  for (const b of BACKENDS) {
    const now = await liveLocal(b)
    const lost = before[b].filter((n) => !now.includes(n))
    figures.mailboxesLost += lost.length
    expect(now, `${b}'s local mailboxes`).toEqual(before[b])
    for (const n of now) union.add(n)
  }
  const master = Object.keys(JSON.parse((await onHost('mupdate', `${CTL} -d`)).stdout)).sort()
  expect(master).toEqual([...union].sort())
  figures.copiesChecked += await assertAllJournalCopiesIntact()
}

/** The run id a stopped run's message offers to resume. */
export const runIdOf = (r: {stderr: string; json?: any}) => (r.json?.error?.hint ?? r.stderr).match(/--resume (\S+)/)?.[1] as string

/** recover-master --source backends with a fault injected once its output matches `when`. */
export async function recoverWithFault(figures: Figures, when: RegExp, inject: () => Promise<unknown>) {
  const r = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'backends', '--yes'], {injectWhen: when, inject})
  figures.runs++
  figures.faults++
  return r
}

/** --resume the stopped run; it must finish. */
export async function resumeRun(figures: Figures, run: string, what: string) {
  expect(run, `no run id to resume after ${what}`).toBeTruthy()
  const r = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
  figures.runs++
  figures.resumed++
  expect(r.exitCode, `resume after ${what}: ${JSON.stringify(r.json?.error)}`).toBe(0)
  return r
}

// Stopped first: a cyrus-master (or sshd) that sees a child die forks another, which would
// outlive it holding the port.
const killTree = 'k() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do k "$c"; done; kill -KILL "$1" 2>/dev/null; }'
/** Kill a host's sshd and every session it holds: murderctl's pooled connection dies too. */
export const killSshd = (h: string) => onHost(h, `${killTree}; k "$(cat /run/sshd.pid)"; rm -f /run/sshd.pid`)
/** Kill the master's cyrus-master. Until init has reaped it, a killed cyrus-master is a zombie that kill -0 still finds. */
export const killCyrusMaster = () =>
  onHost('mupdate', `${killTree}; p=$(cat /run/cyrus-master.pid); k "$p"; i=0; while [ -e /proc/$p ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done`)
export const startSshd = (h: string, config = sshdConfig(h)) => onHost(h, `/usr/sbin/sshd -f ${config}`)

/**
 * An sshd config for `h` that serves a host key of its own, made now: a fault that restarts
 * `h`'s sshd with it (killSshd, then startSshd(h, config)) gives `h` a changed key.
 */
export async function newHostKeyConfig(h: string): Promise<string> {
  const key = join(lab().dir, `fault-host-key-${h}`)
  const config = join(lab().dir, `fault-sshd_config-${h}`)
  writeFileSync(config, readFileSync(sshdConfig(h), 'utf8').replace(/^HostKey .*$/m, `HostKey ${key}`))
  await onHost(h, `rm -f ${key} ${key}.pub && ssh-keygen -q -t ed25519 -N '' -f ${key}`)
  return config
}

/** Start the master as an operator would, and wait until it listens (what the stop message asks). */
export async function startMaster(): Promise<void> {
  await onHost('mupdate', `${svc()} start`)
  const port = readLabState(lab().dir)?.mupdatePort ?? 3905
  const deadline = Date.now() + 30_000
  const at = `${labHost('mupdate').address}:${port} `
  while ((await onHost('mupdate', `ss -Htln | grep -qF '${at}' && echo up || true`)).stdout.trim() !== 'up') {
    if (Date.now() > deadline) throw new Error(`the master does not listen on ${port}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/**
 * The lab inventory with `host`'s binDir on a copy of Cyrus's tools where ctl_mboxlist's push
 * prints an error and exits 0 (what Cyrus tools do), or (slow) takes 3 s longer so a fault lands
 * mid-push; -d, -u and -m -w still work.
 */
export function fakeToolInventory(host: string, kind: 'error' | 'slow' = 'error'): string {
  const bin = join(lab().dir, `${kind === 'error' ? 'fault' : 'slow'}-bin-${host}`)
  const script =
    kind === 'error'
      ? `#!/bin/sh
case " $* " in *" -w "*|*" -d "*|*" -u "*) exec /usr/lib/cyrus/bin/ctl_mboxlist "$@";; esac
echo "fatal error: mupdate: could not push: IOERROR: simulated by the fault matrix" >&2
exit 0
`
      : `#!/bin/sh
case " $* " in *" -w "*|*" -d "*|*" -u "*) ;; *) sleep 3;; esac
exec /usr/lib/cyrus/bin/ctl_mboxlist "$@"
`
  const inv = parse(readFileSync(lab().inventory, 'utf8'))
  const h = inv.hosts.find((x: any) => x.name === host)
  h.cyrus = {...h.cyrus, binDir: bin}
  const path = join(lab().dir, `inventory-${kind === 'error' ? 'fault' : 'slow'}-${host}.yaml`)
  writeFileSync(path, stringify(inv))
  writeFileSync(`${bin}.sh`, script, {mode: 0o755})
  return path
}

/** The fake tool folders on the backends: every real tool linked, ctl_mboxlist replaced. */
export async function installFakeTools(): Promise<void> {
  for (const h of BACKENDS)
    for (const kind of ['error', 'slow'] as const) {
      const bin = join(lab().dir, `${kind === 'error' ? 'fault' : 'slow'}-bin-${h}`)
      fakeToolInventory(h, kind)
      await onHost(
        h,
        `mkdir -p ${bin} && for f in /usr/lib/cyrus/bin/*; do ln -sf "$f" ${bin}/; done && rm -f ${bin}/ctl_mboxlist && cp ${bin}.sh ${bin}/ctl_mboxlist && chmod 755 ${bin}/ctl_mboxlist`,
      )
    }
}
