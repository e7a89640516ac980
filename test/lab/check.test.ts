// murderctl check on the lab: healthy, then each failure made on purpose, through SSH.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import {afterEach, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {z} from 'zod'
import {CheckReport, KNOWN_CHECKS} from '../../src/check/model.js'
import {CTL, dumpEntry, dropEntry, lab, labBase, murderctl, onHost, waitLabHealthy} from './helpers.js'

const service = () => join(lab().dir, 'bin', 'cyrus-service')
const schema = z.fromJSONSchema(JSON.parse(readFileSync(resolve(import.meta.dirname, '../../schemas/check-report.schema.json'), 'utf8')))
let undo: (() => Promise<unknown>) | undefined

async function check(args: string[] = [], inventory = lab().inventory) {
  const state = join(mkdtempSync(join(tmpdir(), 'murderctl-check-')), 'state.json')
  return murderctl(['check', '-i', inventory, '--state-file', state, ...args])
}

async function jsonCheck(args: string[] = []) {
  const r = await check(['--format', 'json', ...args])
  const report = JSON.parse(r.stdout)
  expect(CheckReport.safeParse(report).success).toBe(true)
  expect(schema.safeParse(report).success).toBe(true)
  return {r, report, bad: report.checks.filter((c: any) => c.state !== 'OK')}
}

describe('murderctl check on the standard lab', () => {
  afterEach(async () => {
    if (!undo) return
    await undo()
    undo = undefined
    await waitLabHealthy()
  })

  it('a healthy lab is OK with exit 0, in every format', async () => {
    const n = await check()
    expect(n.exitCode, n.stdout).toBe(0)
    expect(n.stdout.split('\n')[0]).toMatch(/^MURDER OK: \d+ checks OK \| .*'master_mailboxes'=\d+/)
    const {r, report} = await jsonCheck()
    expect(r.exitCode).toBe(0)
    expect(new Set(report.checks.map((c: any) => c.name))).toEqual(new Set(KNOWN_CHECKS))
    // Counted on the master, it is the raw count an operator makes there.
    const raw = Number((await onHost('mupdate', `${CTL} -d | grep -c '^"'`)).stdout.trim())
    expect(report.checks.find((c: any) => c.name === 'master-count').figures.master_mailboxes).toBe(raw)
    const promFile = join(mkdtempSync(join(tmpdir(), 'murderctl-prom-')), 'murder.prom')
    const p = await check(['--format', 'prometheus', '--prometheus-file', promFile])
    expect(p.exitCode).toBe(0)
    const families = parsePrometheusTextFormat(readFileSync(promFile, 'utf8'))
    const status = families.find((f: any) => f.name === 'murder_check_status')!
    expect(status.metrics.length).toBe(report.checks.length)
    expect(status.metrics.every((m: any) => m.value === '0')).toBe(true)
    expect(parsePrometheusTextFormat(p.stdout).map((f: any) => f.name)).toContain('murder_check_up')
  })

  it('master stopped: CRITICAL naming the master', async () => {
    await onHost('mupdate', `${service()} stop`)
    undo = () => onHost('mupdate', `${service()} start`)
    const {r, bad} = await jsonCheck()
    expect(r.exitCode).toBe(2)
    expect(bad.find((c: any) => c.name === 'mupdate-master')).toMatchObject({
      state: 'CRITICAL',
      host: 'mupdate',
      message: expect.stringMatching(/mupdate does not answer/),
    })
    expect(bad.find((c: any) => c.name === 'cyrus-master' && c.host === 'mupdate').message).toMatch(/start it/)
  })

  it('master mailboxes.db emptied: CRITICAL, pointing at recover-master', async () => {
    const before = await check(['--only', 'master-count'])
    expect(before.exitCode).toBe(0)
    await onHost('mupdate', `${service()} stop && mv /var/lib/cyrus/mailboxes.db /var/lib/cyrus/mailboxes.db.test-aside && ${service()} start`)
    undo = () => onHost('mupdate', `${service()} stop && mv /var/lib/cyrus/mailboxes.db.test-aside /var/lib/cyrus/mailboxes.db && ${service()} start`)
    const {r, bad} = await jsonCheck(['--only', 'master-count'])
    expect(r.exitCode).toBe(2)
    expect(bad[0]).toMatchObject({name: 'master-count', state: 'CRITICAL', fix: 'murderctl recover-master --dry-run'})
    expect(bad[0].message).toMatch(/holds 0 entries/)
  })

  it('a slave stopped: CRITICAL for that frontend', async () => {
    await onHost(
      'fe2',
      `sed 's/^\\tmupdate\\t/#&/' /etc/cyrus.conf > /etc/cyrus.conf.n && cp /etc/cyrus.conf /tmp/cyrus.conf.keep && mv /etc/cyrus.conf.n /etc/cyrus.conf && kill -HUP $(cat /run/cyrus-master.pid)`,
    )
    undo = () => onHost('fe2', 'cp /tmp/cyrus.conf.keep /etc/cyrus.conf && kill -HUP $(cat /run/cyrus-master.pid) && sleep 1')
    const {r, bad} = await jsonCheck(['--only', 'slaves'])
    expect(r.exitCode).toBe(2)
    expect(bad).toEqual([expect.objectContaining({name: 'slaves', host: 'fe2', state: 'CRITICAL'})])
  })

  it('a backend diverged: WARNING with the sync-backends fix', async () => {
    await onHost('b1', `${CTL} -u`, dumpEntry('user.henry', 'henry'))
    undo = () => dropEntry('b1', 'user.henry')
    const n = await check(['--only', 'backend-consistency'])
    expect(n.exitCode).toBe(1)
    expect(n.stdout).toMatch(/^MURDER WARNING: .*b1 diverged from the master \(1 changes\)/)
    const {bad} = await jsonCheck(['--only', 'backend-consistency'])
    expect(bad).toEqual([expect.objectContaining({host: 'b1', state: 'WARNING', fix: 'murderctl sync-backends --backend b1'})])
  })

  it('the rolling sync client stopped: CRITICAL for the pair', async () => {
    await onHost(
      'b1',
      `cp /etc/cyrus.conf /tmp/cyrus.conf.keep && sed 's/^\\tsyncclient/#&/' /etc/cyrus.conf > /etc/cyrus.conf.n && mv /etc/cyrus.conf.n /etc/cyrus.conf && kill -HUP $(cat /run/cyrus-master.pid)`,
    )
    undo = () => onHost('b1', 'cp /tmp/cyrus.conf.keep /etc/cyrus.conf && kill -HUP $(cat /run/cyrus-master.pid)')
    const {r, bad} = await jsonCheck(['--only', 'replication'])
    expect(r.exitCode).toBe(2)
    expect(bad[0]).toMatchObject({name: 'replication', host: 'b1', state: 'CRITICAL', message: expect.stringMatching(/rolling sync_client on b1 is disabled/)})
  })

  it('the replica put into the murder: CRITICAL, only one member of a pair may be', async () => {
    await onHost('b1r', 'cp /etc/imapd.conf /tmp/imapd.conf.keep && echo "mupdate_server: mupdate" >> /etc/imapd.conf')
    undo = () => onHost('b1r', 'cp /tmp/imapd.conf.keep /etc/imapd.conf')
    const {r, bad} = await jsonCheck(['--only', 'replication'])
    expect(r.exitCode).toBe(2)
    expect(bad[0]).toMatchObject({host: 'b1', state: 'CRITICAL', message: expect.stringMatching(/both members of pair b1\/b1r are configured for the murder/)})
  })

  it('a host unreachable: CRITICAL naming it; a hung host costs at most --timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-inv-'))
    const doc = parse(readFileSync(lab().inventory, 'utf8'))
    doc.knownHosts = join(lab().dir, 'known_hosts')
    doc.defaults.ssh.identity = join(lab().dir, 'id_ed25519')
    doc.hosts.find((h: any) => h.name === 'b2').address = `${labBase()}.98`
    writeFileSync(join(dir, 'down.yaml'), stringify(doc))
    const down = await check(['--format', 'json'], join(dir, 'down.yaml'))
    expect(down.exitCode).toBe(2)
    const b2 = JSON.parse(down.stdout).checks.filter((c: any) => c.host === 'b2')
    expect(b2.length).toBeGreaterThan(0)
    for (const c of b2) expect(c).toMatchObject({state: 'CRITICAL', message: expect.stringMatching(/b2 cannot be read: .*connection refused/)})

    await onHost('b2', 'rm -f /run/murderctl-hang && mkfifo /run/murderctl-hang')
    undo = () => onHost('b2', 'rm -f /run/murderctl-hang')
    doc.hosts.find((h: any) => h.name === 'b2').address = `${labBase()}.14`
    doc.hosts.find((h: any) => h.name === 'b2').cyrus = {pidFile: '/run/murderctl-hang'}
    writeFileSync(join(dir, 'hung.yaml'), stringify(doc))
    const started = Date.now()
    const hung = await check(['--timeout', '6'], join(dir, 'hung.yaml'))
    expect(Date.now() - started).toBeLessThan(12_000)
    expect([2, 3]).toContain(hung.exitCode)
    expect(hung.stdout).toMatch(/b2.*timed out/)
  })

  it("bad arguments are UNKNOWN (exit 3) on stdout, not oclif's exit 2", async () => {
    const r = await check(['--only', 'no-such-check'])
    expect(r.exitCode).toBe(3)
    expect(r.stdout).toMatch(/^MURDER UNKNOWN: /)
    const inv = await murderctl(['check', '-i', '/nonexistent/murder.yaml'])
    expect(inv.exitCode).toBe(3)
    expect(inv.stdout).toMatch(/^MURDER UNKNOWN: .*no such inventory file/)
  })
})
