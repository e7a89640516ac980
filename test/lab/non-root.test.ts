// An operator account that is not root: murderctl logs in as it and runs every command through
// `sudo -n`, allowed by exactly the sudoers rule the README gives.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {lab, labChecksums, murderctl, onHost} from './helpers.js'

const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8')
const rule = /<!-- sample: sudoers -->\n```\n([\s\S]*?)```/.exec(readme)![1]

describe('a non-root operator account with sudo', () => {
  afterAll(async () => {
    await onHost('b2', 'rm -f /etc/sudoers.d/murderctl; userdel murderop 2>/dev/null; true')
  })

  it("status, check and a sync-backends dry run work as murderop on b2, through the README's sudoers rule", async () => {
    // On b2 only (its /etc is its own): the account and the rule, checked by visudo first.
    await onHost('b2', 'id murderop >/dev/null 2>&1 || { useradd -M -d / -s /bin/sh murderop && usermod -p "*" murderop; }')
    await onHost(
      'b2',
      'cat > /etc/sudoers.d/murderctl.new && visudo -cq -f /etc/sudoers.d/murderctl.new && chmod 0440 /etc/sudoers.d/murderctl.new && mv /etc/sudoers.d/murderctl.new /etc/sudoers.d/murderctl',
      rule.replaceAll('ops', 'murderop'),
    )
    const dir = mkdtempSync(join(tmpdir(), 'murderctl-sudo-'))
    const doc = parse(readFileSync(lab().inventory, 'utf8'))
    doc.knownHosts = join(lab().dir, 'known_hosts')
    doc.defaults.ssh.identity = join(lab().dir, 'id_ed25519')
    doc.stateDir = join(dir, 'state')
    doc.hosts.find((h: any) => h.name === 'b2').ssh = {user: 'murderop', sudo: true}
    const inv = join(dir, 'murder.yaml')
    writeFileSync(inv, stringify(doc))
    // Without sudo the account cannot read Cyrus's files: the same host, as murderop, fails.
    expect((await onHost('b2', 'su -s /bin/sh murderop -c "cat /var/lib/cyrus/mailboxes.db" >/dev/null 2>&1; echo $?')).stdout.trim()).not.toBe('0')
    const status = await murderctl(['status', '-i', inv, '--json'])
    expect(status.exitCode, status.stdout).toBe(0)
    const b2 = status.json.hosts.find((h: any) => h.name === 'b2')
    expect(b2).toMatchObject({reachable: true, cyrusMaster: {running: true}})
    expect(b2.notes).toEqual([])
    expect(b2.mailboxes.local).toBeGreaterThan(0)
    const check = await murderctl(['check', '-i', inv, '--only', 'backend-consistency', '--only', 'cyrus-master'])
    expect(check.exitCode, check.stdout).toBe(0)
    // A dry run through sudo changes nothing on any host either.
    const sums = await labChecksums()
    const dry = await murderctl(['sync-backends', '-i', inv, '--dry-run', '--json'])
    expect(dry.exitCode, dry.stdout).toBe(0)
    expect(await labChecksums()).toEqual(sums)
  })
})
