// murderctl report on real runs of the lab: recover-master stopped at the diff without consent,
// then resumed to the end, and sync-backends; the copies-exist column is checked over SSH and
// the HTML is looked at in real headless Chromium.
import {existsSync, mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {dumpDom, screenshot} from '../chromium.js'
import {lintMarkdown} from '../unit/report/markdownlint.js'
import {assertJournalCopiesIntact, CTL, dropEntry, dumpEntry, lab, labChecksums, loseMasterDb, murderctl, onHost, waitLabHealthy} from './helpers.js'

const out = mkdtempSync(join(tmpdir(), 'murderctl-report-lab-'))
const report = (args: string[]) => murderctl(['report', '-i', lab().inventory, ...args])
const backendDbs = (sums: Record<string, string>) => Object.fromEntries(Object.entries(sums).filter(([k]) => /^b\d?r?:.*mailboxes\.db$/.test(k)))

describe('murderctl report on the standard lab', () => {
  afterAll(async () => {
    await onHost('mupdate', `${join(lab().dir, 'bin', 'cyrus-service')} start`).catch(() => {})
    // The mailbox made for the diff goes again, from b1 and (by -m) from the master.
    await dropEntry('b1', 'user.rpt0').catch(() => {})
    await onHost('b1', `${CTL} -m`).catch(() => {})
    await waitLabHealthy()
  })

  it('recover-master stopped without consent (at the diff), then resumed: both reports, copies checked on the hosts', async () => {
    // A mailbox made on b1 behind the master's back, so the recovery has a diff to show.
    await onHost('b1', `${CTL} -u`, dumpEntry('user.rpt0', 'rpt0'))
    await loseMasterDb(undefined, {restart: false})
    const before = await labChecksums()
    const stopped = await murderctl(['recover-master', '-i', lab().inventory, '--source', 'frontend', '--json'])
    expect(stopped.exitCode, JSON.stringify(stopped.json?.error)).toBe(6)
    const run = /--resume (\S+)/.exec(stopped.json.error.hint)![1]
    const journal = join(lab().dir, 'state', 'runs', run, 'journal.jsonl')
    // Without consent nothing was pushed: the backends' lists are as they were.
    expect(backendDbs(await labChecksums())).toEqual(backendDbs(before))
    expect(readFileSync(journal, 'utf8')).not.toContain('"step":"push"')
    await assertJournalCopiesIntact(journal)

    const mdFile = join(out, 'stopped.md')
    const md = await report([run, '--format', 'md', '--out', mdFile])
    expect(md.exitCode, md.stderr).toBe(0)
    const text = readFileSync(mdFile, 'utf8')
    expect(text).toContain('**awaiting consent**')
    // Where the run asked: at the diff (the diff is kept, folded, not pushed), or, where the
    // engine asks for the plan before the first change, before that step with nothing changed.
    const stoppedAt = stopped.json.error.stoppedAt as string
    const atDiff = existsSync(join(dirname(journal), `diff-${stoppedAt}.json`))
    expect(text).toContain(`Stopped ${atDiff ? 'after' : 'before'} step ${stoppedAt}`)
    if (atDiff) {
      expect(text).toContain('**Not confirmed: not pushed.**')
      expect(text).toMatch(/<details><summary>b1: all 1 change<\/summary>\n\n```text\nForce Activate: user.rpt0\n```/)
      // It changed hosts before the diff: the way back is offered too.
      expect(text).toContain(`murderctl recover-master -i ${lab().inventory} --rollback ${run}`)
    } else {
      expect(await labChecksums()).toEqual(before)
      expect(text).toContain('nothing was changed')
      expect(text).not.toContain('--rollback')
    }
    expect(text).toContain(`--resume ${run} --yes`)
    // The master's lost db was already gone, so nothing was set aside before the diff.
    expect(text).toContain(readFileSync(journal, 'utf8').includes('saved-copy') ? 'yes, same sha256' : 'No copy was recorded.')
    expect(lintMarkdown(text)).toEqual([])

    const done = await murderctl(['recover-master', '-i', lab().inventory, '--resume', run, '--yes', '--json'])
    expect(done.exitCode, JSON.stringify(done.json?.error)).toBe(0)
    const copies = await assertJournalCopiesIntact(journal)
    expect(copies).toBeGreaterThanOrEqual(3)

    const json = await report([run, '--json'])
    expect(json.exitCode, json.stderr).toBe(0)
    expect(json.json).toMatchObject({run, command: 'recover-master', murder: 'lab', outcome: 'completed'})
    expect(json.json.copies).toHaveLength(copies)
    expect(json.json.copies.every((c: any) => c.now === 'present')).toBe(true)
    // The consent at the diff (the engine may also have journaled one for its plan): given by
    // --yes on the resume, or "not recorded" where the journal does not say how yet.
    expect(json.json.consents.filter((c: any) => c.step === 'diff').map((c: any) => c.by)).toEqual([expect.stringMatching(/^(--yes|not recorded)$/)])
    expect(json.json.diffs[0]).toMatchObject({step: 'diff', pushed: true})

    const doneMd = (await report([run, '--format', 'md'])).stdout
    expect(doneMd).toMatch(/\| mupdate \| `[^`]+` \| `[^`]+murderctl-[^`]+` \| `[0-9a-f]{64}` \| copied \| yes, same sha256 \|/)
    expect(lintMarkdown(`${doneMd}\n`)).toEqual([]) // execa strips the last newline

    const htmlFile = join(out, 'completed.html')
    expect((await report([run, '--format', 'html', '--out', htmlFile])).exitCode).toBe(0)
    expect(await screenshot(htmlFile, join(out, 'completed.png'))).toBeGreaterThan(40_000)
    const dom = await dumpDom(htmlFile)
    expect(dom).toMatch(/<svg [^>]*class="gantt"/)
    expect(dom).toMatch(/<details class="diff-list"><summary>b1: all 1 change<\/summary><pre>Force Activate: user.rpt0<\/pre>/)
    expect(dom.match(/yes, same sha256/g)).toHaveLength(copies)
    await waitLabHealthy()
  })

  it('sync-backends: the plan, the consent by --yes, and a copy that went missing since', async () => {
    for (const name of ['user.rpt1', 'user.rpt1.Sent']) await onHost('b1', `${CTL} -u`, dumpEntry(name, 'rpt1'))
    try {
      const sync = await murderctl(['sync-backends', '-i', lab().inventory, '--yes', '--json'])
      expect(sync.exitCode, sync.stderr).toBe(0)
      await assertJournalCopiesIntact(sync.json.journal)
      const list = await report(['--list', '--json'])
      const run = list.json[0].run
      expect(list.json[0]).toMatchObject({command: 'sync-backends', outcome: 'completed'})
      const r = await report([run, '--json'])
      expect(r.json.diffs[0]).toMatchObject({pushed: true})
      const b1 = r.json.diffs[0].targets.find((t: any) => t.target === 'b1')
      expect(b1.kinds.find((k: any) => k.label === 'Force Activate').items).toEqual(expect.arrayContaining(['user.rpt1', 'user.rpt1.Sent']))
      // Through the engine: the plan's consent before the first change, then the diff's.
      expect(r.json.consents).toMatchObject([
        {gate: 'plan', by: '--yes'},
        {gate: 'diff', step: 'review', by: '--yes'},
      ])
      expect(r.json.copies.map((c: any) => c.now)).toEqual(r.json.copies.map(() => 'present'))
      // A copy removed on its host afterwards is reported missing, the others still present.
      const gone = r.json.copies.find((c: any) => c.host === 'b1')
      await onHost('b1', `rm -f -- '${gone.copy}'`)
      const after = await report([run, '--format', 'md'])
      expect(after.stdout).toMatch(/\| b1 \| [^\n]+ \| copied \| MISSING \|/)
      expect(after.stdout).toMatch(/\| mupdate \| [^\n]+ \| copied \| yes, same sha256 \|/)
      const offline = await report([run, '--offline', '--format', 'md'])
      expect(offline.stdout).toContain('Not checked on the hosts (--offline).')
    } finally {
      for (const name of ['user.rpt1.Sent', 'user.rpt1']) await dropEntry('b1', name)
      await onHost('b1', `${CTL} -m`)
    }
  })
})
