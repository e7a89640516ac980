// The post-mortem of one run, as a model the Markdown and HTML renderers share. Built from the
// journal's generic events only (run-start/end, step-*, command, saved-copy, note, interrupted),
// never from one command's step names, so failover, repair or rollback runs read the same way;
// unknown events and fields are ignored, fields added later (murder, operator, consent by) are
// read when present.
import {pastNoReturn} from '../engine/engine.js'
import type {GatheredRun, LooseEvent} from '../services/report.js'

export type UnitStatus = 'done' | 'failed' | 'skipped' | 'unfinished' | 'ended'

/** One attempt of one step on one host (or on no host: a murder-wide step). */
export interface TimelineUnit {
  step: string
  host: string | null
  start: number
  end: number
  status: UnitStatus
  detail?: string
}

export interface Consent {
  at: string
  step?: string
  /** Which question: the plan before the first change, or a diff before it is pushed. */
  gate?: string
  /** --yes, prompt, or what the journal says; "not recorded" for journals older than the field. */
  by: string
  who?: string
}

export interface DiffTarget {
  target: string
  kinds: {label: string; items: string[]}[]
}

export interface DiffView {
  file: string
  step?: string
  targets: DiffTarget[]
  total: number
  /** The consent that let it be pushed, if any. */
  consent?: Consent
  /** Consented, or (journals without consent records) the run went on to run commands. */
  pushed: boolean
}

export interface CopyRow {
  step?: string
  host: string
  path?: string
  copy: string
  sha256?: string
  bytes?: number
  moved: boolean
  /** present, changed, missing or unchecked, with why when unchecked. */
  now: string
  reason?: string
}

export interface Figures {
  step: string
  host?: string
  at: string
  rows: [string, string][]
}

export interface CommandRow {
  at: string
  step?: string
  host?: string
  command: string
  exitCode: number | null | undefined
  durationMs?: number
  stdoutSha256?: string
}

export type Outcome = 'completed' | 'failed' | 'awaiting consent' | 'interrupted' | 'stopped' | 'dry run' | 'rolled back' | 'rollback stopped'

/** A run's rollback (--rollback RUN), from its rollback-start/-step/-end events: every attempt of it. */
export interface RollbackView {
  start: string
  end?: string
  completed: boolean
  /** Who consented to it, when journaled. */
  consent?: Consent
  units: {at: string; id: string; host?: string; status: string; detail?: string}[]
  /** Files put back: path, from which copy, and what was there instead (kept as). */
  restored: {host?: string; path: string; from?: string; replacedKeptAs?: string; sha256?: string}[]
  notRestored: {host: string; copy: string; reason: string}[]
  verified: {check: string; host: string; ok: boolean; detail: string}[]
}

/** A table cell as the renderers escape it: plain text, a literal (a path, a copy, a checksum) or a word that must stand out. */
export type Cell = {text: string} | {code: string} | {strong: string}

/** A rollback's tables, in order, for either renderer: what ran, the files put back, what was kept, the checks after. */
export function rollbackTables(b: RollbackView): {caption?: string; headers: string[]; rows: Cell[][]}[] {
  const t = (s: string | undefined) => ({text: s ?? ''})
  const c = (s: string | undefined) => ({code: s ?? ''})
  const tables = [
    {headers: ['at', 'unit', 'host', 'status', 'detail'], rows: b.units.map((u) => [t(u.at), t(u.id), t(u.host), t(u.status), t(u.detail)])},
    {
      caption: 'Files put back:',
      headers: ['host', 'file', 'from copy', 'sha256', 'what was there, kept as'],
      rows: b.restored.map((f) => [t(f.host), c(f.path), c(f.from), c((f.sha256 ?? '').slice(0, 16)), c(f.replacedKeptAs)]),
    },
    {caption: 'Kept, not put back:', headers: ['host', 'copy', 'why'], rows: b.notRestored.map((n) => [t(n.host), c(n.copy), t(n.reason)])},
    {
      caption: 'Verified after:',
      headers: ['host', 'check', 'ok', 'detail'],
      rows: b.verified.map((v) => [t(v.host), t(v.check), v.ok ? t('yes') : {strong: 'NO'}, t(v.detail)]),
    },
  ]
  return tables.filter((x) => x.rows.length > 0)
}

export interface RunReport {
  run: string
  command: string
  murder: string
  operator: string
  start: string
  end: string
  durationMs: number
  outcome: Outcome
  /** Other facts of the run-start worth showing (playbook, source, inventory fingerprint...). */
  facts: [string, string][]
  timeline: TimelineUnit[]
  consents: Consent[]
  refusals: (Consent & {reason: string})[]
  diffs: DiffView[]
  copies: CopyRow[]
  copiesChecked: {at: string; offline: boolean}
  figures: Figures[]
  commands: CommandRow[]
  stop?: {where: string; reason: string; resume?: string; rollback?: string; noRollback?: string}
  rollback?: RollbackView
  unreadableLines: number
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined)
const t = (iso: string) => Date.parse(iso)
const unitKey = (e: {step?: string; host?: string}) => `${e.step ?? ''}@${e.host ?? ''}`

const consentOf = (e: LooseEvent): Consent => ({
  at: e.at,
  step: e.step,
  gate: str(e.data?.gate),
  by: str(e.data?.by) ?? str(e.data?.how) ?? 'not recorded',
  who: str(e.data?.who) ?? str(e.data?.operator),
})

/** Consents as journaled ({note, confirmed: true}, with gate, by and who when recorded), or as a 'consent' event. */
export function consents(events: LooseEvent[]): Consent[] {
  return events.filter((e) => (e.event === 'note' && e.data?.confirmed === true) || e.event === 'consent').map(consentOf)
}

/** Questions answered no, or that could not be asked (no terminal): {note, confirmed: false}. */
export function refusals(events: LooseEvent[]): (Consent & {reason: string})[] {
  return events.filter((e) => e.event === 'note' && e.data?.confirmed === false).map((e) => ({...consentOf(e), reason: str(e.data?.reason) ?? 'answered no'}))
}

/** Each attempt of each step on each host, from its first to its last event. */
export function timeline(events: LooseEvent[]): TimelineUnit[] {
  const units: TimelineUnit[] = []
  const open = new Map<string, TimelineUnit>()
  // The engine runs one step at a time on a host: a unit still open when another starts on the
  // same host has ended (sync-backends journals no step-done for its push, only the verify).
  const closeOthersOn = (host: string | null, except: string) => {
    for (const [k, u] of open)
      if (k !== except && u.host === host && host !== null) {
        u.status = 'ended'
        open.delete(k)
      }
  }
  const openUnit = (e: LooseEvent, start: number): TimelineUnit => {
    const k = unitKey(e)
    let u = open.get(k)
    if (!u) {
      closeOthersOn(e.host ?? null, k)
      u = {step: e.step ?? '', host: e.host ?? null, start, end: start, status: 'unfinished'}
      units.push(u)
      open.set(k, u)
    }
    return u
  }
  for (const e of events) {
    if (!e.step) continue
    const at = t(e.at)
    if (Number.isNaN(at)) continue
    switch (e.event) {
      case 'step-start':
        open.delete(unitKey(e))
        openUnit(e, at)
        break
      case 'command': {
        const u = openUnit(e, at - (e.durationMs ?? 0))
        u.start = Math.min(u.start, at - (e.durationMs ?? 0))
        u.end = at
        if (e.exitCode !== 0 && e.exitCode !== undefined) u.detail = `exit ${e.exitCode}: ${e.command ?? ''}`
        break
      }
      case 'saved-copy': {
        const u = openUnit(e, at)
        u.end = Math.max(u.end, at)
        break
      }
      case 'rollback-step': {
        const u = openUnit(e, at)
        u.end = at
        u.status = e.data?.status === 'failed' ? 'failed' : e.data?.status === 'skipped' ? 'skipped' : 'done'
        u.detail = str(e.data?.error) ?? str(e.data?.skipped)
        open.delete(unitKey(e))
        break
      }
      case 'step-done':
      case 'step-failed':
      case 'step-skipped': {
        const u = openUnit(e, at)
        u.end = at
        u.status = e.event === 'step-failed' ? 'failed' : e.event === 'step-skipped' || e.data?.alreadyHeld !== undefined ? 'skipped' : 'done'
        const err = e.data?.error
        if (e.event === 'step-failed')
          u.detail =
            str(err) ??
            str((err as {message?: string} | undefined)?.message) ??
            (Array.isArray(e.data?.unreachable) ? (e.data.unreachable as unknown[]).join('; ') : undefined)
        else if (u.status === 'skipped') u.detail = str(e.data?.alreadyHeld) ? `${str(e.data?.alreadyHeld)} already` : 'skipped'
        open.delete(unitKey(e))
        break
      }
      default:
        break
    }
  }
  // Still open at the end: cut short if the run never ended, else just without a closing event.
  const ended = events.some((e) => e.event === 'run-end')
  for (const u of open.values()) u.status = ended ? 'ended' : 'unfinished'
  return units
}

/** Unit keys whose last attempt failed (a later done attempt of a resumed run clears it). */
function unresolvedFailures(events: LooseEvent[]): LooseEvent[] {
  const last = new Map<string, LooseEvent>()
  for (const e of events) if ((e.event === 'step-done' || e.event === 'step-failed') && e.step) last.set(unitKey(e), e)
  return [...last.values()].filter((e) => e.event === 'step-failed')
}

const LABELS: Record<string, string> = {
  activate: 'Force Activate',
  removeFromMupdate: 'Remove from MUPDATE',
  removeRemoteFlag: 'Remove remote flag on',
  removeLocal: 'Remove Local Mailbox',
  claimsAvoided: 'Remote entries left out',
  conflicts: 'Conflict (the master places it elsewhere)',
}
// Cyrus's order in -m -w output first, anything else after.
const rank = (label: string) => {
  const i = Object.values(LABELS).indexOf(label)
  return i < 0 ? 99 : i
}
const humanize = (k: string) => LABELS[k] ?? k.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase())

function itemText(x: unknown): string {
  if (typeof x === 'string') return x
  if (x && typeof x === 'object') {
    const o = x as Record<string, unknown>
    const name = str(o.mailbox) ?? str(o.name)
    const rest = Object.entries(o)
      .filter(([k]) => k !== 'mailbox' && k !== 'name')
      .map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    return name ? `${name}${rest.length ? ` (${rest.join(', ')})` : ''}` : JSON.stringify(o)
  }
  return JSON.stringify(x)
}

/** Every list of changes in a diff target object: arrays anywhere in it (warn.activate, conflicts...). */
function kindsOf(o: Record<string, unknown>, into: DiffTarget['kinds'] = []): DiffTarget['kinds'] {
  for (const [k, v] of Object.entries(o)) {
    if (k === 'error' || k === 'fingerprint') continue
    if (Array.isArray(v)) into.push({label: humanize(k), items: v.map(itemText)})
    else if (v && typeof v === 'object') kindsOf(v as Record<string, unknown>, into)
  }
  return into
}

/** A kept diff (diff-<step>.json: a list per backend) or plan ({backends: [...]}), read by shape. */
export function diffView(d: GatheredRun['diffs'][number], all: Consent[], events: LooseEvent[] = []): DiffView | undefined {
  const c = d.content as unknown
  const list = Array.isArray(c)
    ? c
    : c && typeof c === 'object' && Array.isArray((c as {backends?: unknown}).backends)
      ? (c as {backends: unknown[]}).backends
      : undefined
  if (!list) return undefined
  const targets = list
    .filter((x): x is Record<string, unknown> => Boolean(x) && typeof x === 'object')
    .map((x) => ({target: str(x.backend) ?? str(x.host) ?? str(x.name) ?? '?', kinds: kindsOf(x).sort((a, b) => rank(a.label) - rank(b.label))}))
  const total = targets.reduce((n, x) => n + x.kinds.reduce((m, k) => m + k.items.length, 0), 0)
  // A diff-<step> file is pushed on the consent given at that step; a plan on the run's consent.
  const consent = d.step ? all.find((x) => x.step === d.step) : all[0]
  // sync-backends journals no consent before this version: its plan was pushed if commands ran.
  const pushed = Boolean(consent) || (!d.step && events.some((e) => e.event === 'command'))
  return {file: d.file, step: d.step, targets, total, consent, pushed}
}

/** Flatten a figures object into key/value rows; arrays of {host,...} by host. */
export function flatten(v: unknown, prefix = '', rows: [string, string][] = []): [string, string][] {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      const id = x && typeof x === 'object' ? (str((x as Record<string, unknown>).host) ?? str((x as Record<string, unknown>).backend) ?? String(i)) : String(i)
      const rest =
        x && typeof x === 'object' ? Object.fromEntries(Object.entries(x as Record<string, unknown>).filter(([k]) => k !== 'host' && k !== 'backend')) : x
      flatten(rest, `${prefix}[${id}]`, rows)
    })
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) flatten(x, prefix ? `${prefix}.${k}` : k, rows)
  } else rows.push([prefix, v === null ? 'none' : String(v)])
  return rows
}

function outcomeOf(events: LooseEvent[], start: LooseEvent | undefined, diffs: DiffView[]): {outcome: Outcome; stop?: {where: string; reason: string}} {
  const end = [...events].reverse().find((e) => e.event === 'run-end')
  const failures = unresolvedFailures(events)
  const rollbackEnd = [...events].reverse().find((e) => e.event === 'rollback-end' || e.event === 'rollback-start')
  const rolledBack = rollbackEnd?.event === 'rollback-end' && rollbackEnd.data?.completed === true
  if (rollbackEnd && !rolledBack) {
    const failed = [...events].reverse().find((e) => e.event === 'rollback-step' && e.data?.status === 'failed')
    return {
      outcome: 'rollback stopped',
      stop: {
        where: failed ? `rollback unit ${failed.step}${failed.host ? ` on ${failed.host}` : ''}` : 'during its rollback',
        reason:
          str(failed?.data?.error) ??
          (rollbackEnd.event === 'rollback-start' ? 'the rollback did not end (stopped, or still running)' : 'the rollback ended unverified'),
      },
    }
  }
  const lastActivity = [...events].reverse().find((e) => e.event.startsWith('step-') || e.event === 'interrupted')
  if (end) {
    const d = end.data ?? {}
    if (d.dryRun === true || start?.data?.dryRun === true) return {outcome: 'dry run'}
    if (rolledBack || d.rolledBack === true) return {outcome: 'rolled back'}
    if (d.completed === false || d.agreed === false || d.ok === false || failures.length)
      return {
        outcome: 'failed',
        stop: failures[0]
          ? {where: `step ${failures[0].step}${failures[0].host ? ` on ${failures[0].host}` : ''}`, reason: failureText(failures[0])}
          : {where: 'at the end', reason: 'the run ended unverified'},
      }
    return {outcome: 'completed'}
  }
  if (rolledBack) return {outcome: 'rolled back'}
  if (lastActivity?.event === 'interrupted')
    return {outcome: 'interrupted', stop: {where: `before step ${lastActivity.step}`, reason: 'interrupted by the operator (every step before it is done)'}}
  if (failures.length)
    return {
      outcome: 'failed',
      stop: {where: `step ${failures.map((f) => `${f.step}${f.host ? ` on ${f.host}` : ''}`).join(', ')}`, reason: failureText(failures[0])},
    }
  // The last question of the run went unanswered (no terminal) or was answered no.
  const lastNote = [...events].reverse().find((e) => e.event === 'note' && typeof e.data?.confirmed === 'boolean')
  if (lastNote?.data?.confirmed === false) {
    const gate = str(lastNote.data.gate)
    const reason = str(lastNote.data.reason) ?? 'answered no'
    return {
      outcome: 'awaiting consent',
      stop: {
        where: `${gate === 'plan' ? 'before' : 'after'} step ${lastNote.step}`,
        reason: `${gate === 'plan' ? 'the plan' : 'the diff'} was shown and not confirmed (${reason}): ${gate === 'plan' ? 'nothing was changed' : 'nothing after it ran'}`,
      },
    }
  }
  const waiting = diffs.find((d) => d.step && !d.pushed)
  if (waiting)
    return {
      outcome: 'awaiting consent',
      stop: {
        where: `after step ${waiting.step}`,
        reason: `the diff (${waiting.total} change${waiting.total === 1 ? '' : 's'}) was shown and not confirmed: nothing after it ran`,
      },
    }
  return {
    outcome: 'stopped',
    stop: {
      where: lastActivity?.step ? `after step ${lastActivity.step}` : 'before its first step',
      reason: 'the journal ends without a run-end (the process was stopped, or is still running)',
    },
  }
}

function failureText(e: LooseEvent): string {
  const d = e.data ?? {}
  return str(d.error) ?? (Array.isArray(d.unreachable) ? (d.unreachable as unknown[]).join('; ') : 'failed')
}

/** The commands whose stopped runs --rollback undoes. */
const ROLLS_BACK = new Set(['recover-master', 'sync-backends', 'failover'])

/** The commands that take the pair as their argument (as `--resume` and `--rollback` need it too). */
const FOR_A_PAIR = new Set(['failover', 'replication-repair', 'reconcile'])

/** The command line's words for a journal's command: `replication repair b1`, `failover b1`, `sync-backends`. */
function commandLine(command: string, startData: Record<string, unknown>): string {
  const words = command === 'replication-repair' ? 'replication repair' : command
  const pair = str((startData.options as Record<string, unknown> | undefined)?.pair) ?? str(startData.pair)
  return FOR_A_PAIR.has(command) && pair ? `${words} ${pair}` : words
}

/** How to go on from a stopped run: what the run-start says, else the command's own --resume. */
function continuation(
  command: string,
  run: string,
  inventory: string | undefined,
  outcome: Outcome,
  startData: Record<string, unknown>,
  changed: boolean,
  noReturn?: {step: string; reason: string},
) {
  const i = inventory ? ` -i ${inventory}` : ''
  const cli = commandLine(command, startData)
  const resume =
    str(startData.resumeCommand) ??
    // sync-backends runs from before it ran a playbook cannot be resumed: plan again.
    (command === 'sync-backends' && !str(startData.playbook)
      ? `murderctl sync-backends${i} --dry-run (then sync-backends${i} for what is left)`
      : `murderctl ${cli}${i} --resume ${run}${outcome === 'awaiting consent' ? ' --yes' : ''}`)
  // Only a run that changed something has anything to roll back.
  const rollback = str(startData.rollbackCommand) ?? (ROLLS_BACK.has(command) && changed ? `murderctl ${cli}${i} --rollback ${run}` : undefined)
  // A stopped rollback goes on with the same command, never with a resume of the run.
  if (outcome === 'rollback stopped') return {resume: rollback ?? `murderctl ${cli}${i} --rollback ${run}`, rollback: undefined}
  // Past an irreversible step (a new master started), the way back is not a rollback.
  if (noReturn) return {resume, noRollback: `step ${noReturn.step} has started: ${noReturn.reason}`}
  return {resume, rollback}
}

/** The rollback of a run, if it had one. */
export function rollbackView(events: LooseEvent[]): RollbackView | undefined {
  const starts = events.filter((e) => e.event === 'rollback-start')
  if (!starts.length) return undefined
  const end = [...events].reverse().find((e) => e.event === 'rollback-end')
  const steps = events.filter((e) => e.event === 'rollback-step')
  const consent = consents(events).find((c) => c.gate === 'rollback')
  const last = starts.at(-1)!.data ?? {}
  const verified = Array.isArray(end?.data?.verified) ? (end.data.verified as RollbackView['verified']) : []
  return {
    start: starts[0].at,
    end: end?.at,
    completed: end?.data?.completed === true && Date.parse(end.at) >= Date.parse(starts.at(-1)!.at),
    consent,
    units: steps.map((e) => ({
      at: e.at,
      id: e.step ?? '',
      host: e.host,
      status: str(e.data?.status) ?? 'done',
      detail: str(e.data?.error) ?? str(e.data?.skipped) ?? str(e.data?.proved) ?? (e.data?.already ? 'already in place' : undefined),
    })),
    restored: steps
      .filter((e) => str(e.data?.path) && e.data?.status !== 'failed')
      .map((e) => ({
        host: e.host,
        path: str(e.data?.path)!,
        from: str(e.data?.from),
        replacedKeptAs: str(e.data?.replacedKeptAs),
        sha256: str(e.data?.sha256),
      })),
    notRestored: Array.isArray(last.notRestored) ? (last.notRestored as RollbackView['notRestored']) : [],
    verified,
  }
}

export function buildRunReport(g: GatheredRun): RunReport {
  const ev = g.events
  const start = ev.find((e) => e.event === 'run-start')
  const sd = start?.data ?? {}
  const times = ev.map((e) => t(e.at)).filter((x) => !Number.isNaN(x))
  const first = times.length ? Math.min(...times) : 0
  const last = times.length ? Math.max(...times) : 0
  const all = consents(ev)
  const diffs = g.diffs.map((d) => diffView(d, all, ev)).filter((d): d is DiffView => d !== undefined)
  const {outcome, stop} = outcomeOf(ev, start, diffs)
  const command = str(sd.command) ?? /^\d{8}T\d{6}Z-(.+)-[a-z0-9]{4}$/.exec(g.run)?.[1] ?? 'unknown'
  const facts: [string, string][] = []
  for (const [k, v] of Object.entries(sd)) {
    if (['command', 'murder', 'operator', 'user', 'options'].includes(k) || v === undefined || v === null) continue
    facts.push([k, typeof v === 'string' ? v : JSON.stringify(v)])
  }
  if (sd.options && typeof sd.options === 'object') for (const [k, v] of flatten(sd.options)) facts.push([`option ${k}`, v])
  const checks = new Map(g.copies.map((c) => [`${c.host}:${c.copy}:${String(c.sha256)}`, c]))
  const copies: CopyRow[] = []
  for (const e of ev.filter((x) => x.event === 'saved-copy')) {
    const d = e.data ?? {}
    const host = str(d.host) ?? e.host ?? '?'
    const copy = str(d.copy) ?? '?'
    if (copies.some((c) => c.host === host && c.copy === copy && c.sha256 === str(d.sha256))) continue
    const ch = checks.get(`${host}:${copy}:${String(str(d.sha256))}`)
    copies.push({
      step: e.step,
      host,
      path: str(d.path),
      copy,
      sha256: str(d.sha256),
      bytes: typeof d.bytes === 'number' ? d.bytes : undefined,
      moved: d.moved === true,
      now: ch?.state ?? 'unchecked',
      reason: ch?.reason,
    })
  }
  const figures: Figures[] = ev
    .filter(
      (e) =>
        (e.event === 'step-done' && /verif|agree|check/i.test(e.step ?? '')) ||
        (e.event === 'run-end' && Object.keys(e.data ?? {}).some((k) => k !== 'completed' && k !== 'dryRun')),
    )
    .map((e) => ({step: e.event === 'run-end' ? 'run-end' : e.step!, host: e.host, at: e.at, rows: flatten(e.data ?? {})}))
    .filter((f) => f.rows.length)
  const commands: CommandRow[] = ev
    .filter((e) => e.event === 'command')
    .map((e) => ({
      at: e.at,
      step: e.step,
      host: e.host,
      command: e.command ?? '',
      exitCode: e.exitCode,
      durationMs: e.durationMs,
      stdoutSha256: e.stdoutSha256,
    }))
  const end = [...ev].reverse().find((e) => e.event === 'run-end')
  return {
    run: g.run,
    command,
    murder: str(sd.murder) ?? g.inventory?.name ?? 'unknown',
    operator: str(sd.operator) ?? str(sd.user) ?? 'not recorded',
    start: start?.at ?? new Date(first).toISOString(),
    end: end?.at ?? new Date(last).toISOString(),
    durationMs: last - first,
    outcome,
    facts,
    timeline: timeline(ev),
    consents: all,
    refusals: refusals(ev),
    diffs,
    copies,
    copiesChecked: {at: g.checkedAt, offline: g.offline},
    figures,
    commands,
    stop:
      stop && outcome !== 'completed'
        ? {
            ...stop,
            ...continuation(
              command,
              g.run,
              g.inventory?.path,
              outcome,
              sd,
              ev.some((e) => e.event === 'command' || e.event === 'saved-copy'),
              pastNoReturn(ev),
            ),
          }
        : undefined,
    rollback: rollbackView(ev),
    unreadableLines: g.unreadableLines,
  }
}

/** One line per run for --list. */
export interface RunLine {
  run: string
  command: string
  outcome: Outcome
  start: string
  durationMs: number
}

export function runLine(g: Pick<GatheredRun, 'run' | 'events' | 'diffs'>): RunLine {
  const r = buildRunReport({...g, dir: '', unreadableLines: 0, copies: [], checkedAt: '', offline: true})
  return {run: r.run, command: r.command, outcome: r.outcome, start: r.start, durationMs: r.durationMs}
}

export const formatDuration = (ms: number) =>
  ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`
