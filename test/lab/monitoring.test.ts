// The monitoring samples in the README, as operators paste them: each command runs against the
// lab, the alert rules pass promtool, the systemd units pass systemd-analyze; and check fails
// loudly: a Prometheus file on every run, UNKNOWN JSON that follows the published schema.
import {chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'
import {z} from 'zod'
import {lab, murderctl} from './helpers.js'

const ROOT = resolve(import.meta.dirname, '../..')
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const sample = (name: string) => {
  const m = new RegExp(`<!-- sample: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``).exec(readme)
  if (!m) throw new Error(`README has no sample ${name}`)
  return m[1]
}
const dir = mkdtempSync(join(tmpdir(), 'murderctl-mon-'))
// The samples name /usr/bin/murderctl and /etc/murderctl/murder.yaml: here, the built CLI and the lab.
const bin = join(dir, 'murderctl')
writeFileSync(bin, `#!/bin/sh\nexec node ${join(ROOT, 'bin/run.js')} "$@"\n`)
chmodSync(bin, 0o755)
const local = (line: string) =>
  line.replaceAll('/usr/bin/murderctl', bin).replaceAll('/etc/murderctl/murder.yaml', lab().inventory).replaceAll('/var/lib/prometheus/node-exporter', dir)

describe('monitoring samples in the README', () => {
  it('the Nagios command line, the Icinga 2 arguments and the crontab line run against the lab', async () => {
    const nagios = /command_line\s+(.*)/.exec(sample('nagios'))![1]
    const n = await execa('sh', ['-c', local(nagios)], {reject: false})
    expect(n.exitCode, n.stdout).toBe(0)
    expect(n.stdout).toMatch(/^MURDER OK: /)
    expect(Buffer.byteLength(n.stdout)).toBeLessThanOrEqual(1024)

    const icinga = sample('icinga2')
    const command = JSON.parse(`[${/command = \[(.*)\]/.exec(icinga)![1]}]`) as string[]
    const args = [...icinga.matchAll(/"(-\w)" = "([^"]*)"/g)].flatMap((m) => [m[1], m[2]])
    const i = await execa(local(command[0]), [...command.slice(1), ...args].map(local), {reject: false})
    expect(i.exitCode, i.stdout).toBe(0)

    const cron = sample('crontab').trim().split(/\s+/)
    expect(cron.slice(0, 5)).toEqual(['*/5', '*', '*', '*', '*'])
    expect(cron[5]).toBe('root')
    const c = await execa('sh', ['-c', local(cron.slice(6).join(' '))], {reject: false})
    expect(c.exitCode, c.stdout).toBe(0)
    expect(c.stdout).toBe('') // --quiet: nothing when all is well
    expect(readFileSync(join(dir, 'murder.prom'), 'utf8')).toMatch(/^murder_check_up\{murder="lab"\} 1$/m)
  })

  it('the alert rules pass promtool, and the systemd units pass systemd-analyze verify', async () => {
    writeFileSync(join(dir, 'murder-rules.yml'), sample('prometheus'))
    const p = await execa('promtool', ['check', 'rules', join(dir, 'murder-rules.yml')], {reject: false})
    expect(p.exitCode, p.stdout + p.stderr).toBe(0)
    expect(p.stdout).toMatch(/SUCCESS: 3 rules found/)

    const units = sample('systemd')
    const [service, timer] = units.split(/^# \/etc\/systemd\/system\/murderctl-check\.timer\n/m)
    writeFileSync(join(dir, 'murderctl-check.service'), local(service))
    writeFileSync(join(dir, 'murderctl-check.timer'), timer)
    const v = await execa('systemd-analyze', ['verify', join(dir, 'murderctl-check.service'), join(dir, 'murderctl-check.timer')], {
      reject: false,
      env: {SYSTEMD_LOG_LEVEL: 'warning'},
    })
    expect(v.exitCode, v.stderr).toBe(0)
    expect(v.stderr).not.toMatch(/murderctl-check/)
    const exec = /^ExecStart=(.*)$/m.exec(local(service))![1]
    const s = await execa('sh', ['-c', exec], {reject: false})
    expect(s.exitCode, s.stdout).toBe(0)
  })
})

describe('check fails loudly', () => {
  it("writes the Prometheus file with up 0 and the murder's label when it cannot check", async () => {
    const prom = join(dir, 'failed.prom')
    writeFileSync(prom, 'murder_check_up{murder="lab"} 1\n') // the last good run's file
    const bad = await murderctl(['check', '-i', lab().inventory, '--format', 'prometheus', '--prometheus-file', prom, '--only', 'no-such-check'])
    expect(bad.exitCode).toBe(3)
    expect(readFileSync(prom, 'utf8')).toMatch(/^murder_check_up\{murder="lab"\} 0$/m)
    const noInventory = await murderctl(['check', '-i', join(dir, 'missing.yaml'), '--prometheus-file', prom])
    expect(noInventory.exitCode).toBe(3)
    expect(noInventory.stdout).toMatch(/^MURDER UNKNOWN: /)
    expect(noInventory.stdout).not.toMatch(/murderctl bug/)
    expect(readFileSync(prom, 'utf8')).toMatch(/^murder_check_up\{murder="unknown"\} 0$/m)
    expect(existsSync(`${prom}.tmp`)).toBe(false)
  })

  it('an UNKNOWN JSON report follows schemas/check-report.schema.json', async () => {
    const schema = z.fromJSONSchema(JSON.parse(readFileSync(join(ROOT, 'schemas/check-report.schema.json'), 'utf8')))
    const r = await murderctl(['check', '-i', join(dir, 'missing.yaml'), '--format', 'json'])
    expect(r.exitCode).toBe(3)
    const report = JSON.parse(r.stdout)
    expect(schema.safeParse(report).success, JSON.stringify(report)).toBe(true)
    expect(report).toMatchObject({state: 'UNKNOWN', murder: 'unknown', checks: []})
  })

  it('-t bounds the run, -w/-c set the count thresholds, --quiet stays silent when OK', async () => {
    const r = await murderctl(['check', '-i', lab().inventory, '-t', '20', '-w', '7', '-c', '30', '--quiet'])
    expect(r.exitCode, r.stdout).toBe(0)
    expect(r.stdout).toBe('')
    const json = await murderctl(['check', '-i', lab().inventory, '-w', '7', '-c', '30', '--format', 'json', '--only', 'master-count'])
    const perf = JSON.parse(json.stdout).checks[0].perf
    expect(perf.master_drop_percent).toMatchObject({warn: 7, crit: 30})
  })
})
