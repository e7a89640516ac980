// The SSH transport against real OpenSSH sshd processes started by this file (loopback
// 127.0.8.x, ports above 2200, so they never meet the lab on 127.0.10.x). Everything is
// stopped and removed in afterAll.
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import {type Server, type Socket, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {BugError, HostKeyError, InventoryError, RemoteCommandError, RemoteTimeoutError, UnreachableError} from '../../../src/errors.js'
import type {Host} from '../../../src/inventory/schema.js'
import {sha256Fingerprint} from '../../../src/ssh/known-hosts.js'
import {hashKnownHostsConfigured, LineSplitter, SshPool, type SshPoolOptions, remoteCommandLine} from '../../../src/ssh/pool.js'
import {type Sshd, canConnect, keygen, sshdUnavailable, startSshd} from './sshd-harness.js'

const ADDRESS = '127.0.8.1'
const PORT = 2222
const PORT2 = 2223 // a second sshd with two host key types
const SILENT = {address: '127.0.8.3', port: 2224} // accepts TCP, never speaks SSH

const why = sshdUnavailable()
const NASTY = [
  "it's",
  '$(touch /tmp/murderctl-pwned)',
  '`id`',
  '${HOME}',
  'a b\tc',
  '',
  '"q"',
  '\\',
  'new\nline',
  'ünï ✓',
  ';|&<>',
  '*',
  '~',
  '{a,b}',
  '#x',
  '!x',
  'FOO=bar',
  '-n',
  'user.alice^smith',
  'Shared Folders/Sales & Ops',
]

// OpenSSH does not signal root sessions (no privilege separation child), so a timed-out remote
// `sleep` may live on: find it by its unique argument and end it by its pid.
function reap(arg: string): void {
  try {
    for (const pid of execFileSync('pgrep', ['-x', '-f', `sleep ${arg}`], {encoding: 'utf8'})
      .trim()
      .split('\n'))
      process.kill(Number(pid), 'SIGKILL')
  } catch {
    // none left
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pubBlob = (file: string) => Buffer.from(readFileSync(file, 'utf8').split(' ')[1]!, 'base64')

describe.skipIf(why !== undefined)(`SshPool against a real OpenSSH sshd${why ? ` (skipped: ${why})` : ''}`, () => {
  let dir: string
  let sshd: Sshd
  let sshd2: Sshd | undefined
  let silent: Server | undefined
  const silentSockets = new Set<Socket>()
  let knownHosts: string
  const pools: SshPool[] = []
  /** The second sshd: Ed25519 and ECDSA host keys, MaxSessions 2. */
  const server2 = async () => {
    sshd2 ??= await startSshd({
      dir,
      address: ADDRESS,
      port: PORT2,
      hostKeys: [join(dir, 'hostkey'), join(dir, 'hostkey_ecdsa')],
      authorizedKeys: join(dir, 'authorized_keys'),
      maxSessions: 2,
    })
  }

  const host = (over: Partial<Host['ssh']> = {}, rest: Partial<Host> = {}): Host => ({
    name: 'testhost',
    role: 'backend',
    address: ADDRESS,
    servername: 'testhost',
    ssh: {user: 'root', port: PORT, identity: join(dir, 'id'), sudo: false, connectTimeout: 5, commandTimeout: 30, ...over},
    cyrus: {
      binDir: '/usr/lib/cyrus/bin',
      imapdConf: '/etc/imapd.conf',
      cyrusConf: '/etc/cyrus.conf',
      pidFile: '/run/cyrus-master.pid',
      stop: 'true',
      start: 'true',
      user: 'cyrus',
      group: 'mail',
      syslogFile: '/var/log/syslog',
    },
    ...rest,
  })
  const pool = (opts: Partial<SshPoolOptions> = {}) => {
    const p = new SshPool({knownHostsPath: knownHosts, ...opts})
    pools.push(p)
    return p
  }
  const hostLine = (names: string, pub: string) => `${names} ${readFileSync(pub, 'utf8').split(' ').slice(0, 2).join(' ')}\n`
  const file = (name: string, content: string) => {
    const f = join(dir, name)
    writeFileSync(f, content)
    return f
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'murderctl-sshd-'))
    chmodSync(dir, 0o755)
    keygen(join(dir, 'id'))
    keygen(join(dir, 'stranger')) // a client key sshd does not know
    keygen(join(dir, 'hostkey'))
    keygen(join(dir, 'otherhostkey')) // never served: stands for "the key we knew before"
    keygen(join(dir, 'hostkey_ecdsa'), 'ecdsa')
    keygen(join(dir, 'otherhostkey_ecdsa'), 'ecdsa')
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id.pub')))
    // sudo is not installed here: a stand-in that accepts only `sudo -n -- cmd...` and runs it.
    mkdirSync(join(dir, 'bin'))
    writeFileSync(
      join(dir, 'bin', 'sudo'),
      '#!/bin/sh\n[ "$1" = -n ] && [ "$2" = -- ] || { echo "fake sudo: unexpected arguments: $*" >&2; exit 99; }\nshift 2\nprintf "%s\\n" "$*" >> "$HOME/sudo.log"\nexec "$@"\n',
      {mode: 0o755},
    )
    knownHosts = file('known_hosts', hostLine(`[${ADDRESS}]:${PORT}`, join(dir, 'hostkey.pub')))
    sshd = await startSshd({dir, address: ADDRESS, port: PORT, hostKeys: [join(dir, 'hostkey')], authorizedKeys: join(dir, 'authorized_keys')})
  })

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()))
  })

  afterAll(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()))
    await sshd?.stop()
    await sshd2?.stop()
    silentSockets.forEach((s) => s.destroy())
    await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()))
    if (dir) rmSync(dir, {recursive: true, force: true})
    expect(sshd ? sshd.child.exitCode !== null || sshd.child.signalCode !== null : true).toBe(true)
  })

  describe('running commands', () => {
    it('returns exit codes with stdout and stderr apart, over one reused connection', async () => {
      const p = pool()
      const r = await p.exec(host(), {shell: 'echo out; echo err >&2; exit 3'})
      expect(r).toMatchObject({host: 'testhost', command: 'echo out; echo err >&2; exit 3', exitCode: 3, stdout: 'out\n', stderr: 'err\n'})
      expect(r.signal).toBeUndefined()
      expect(r.durationMs).toBeGreaterThanOrEqual(0)
      expect((await p.exec(host(), ['true'])).exitCode).toBe(0)
      expect((await p.exec(host(), ['false'])).exitCode).toBe(1)
      const a = (await p.exec(host(), {shell: 'echo $SSH_CONNECTION'})).stdout
      const b = (await p.exec(host(), {shell: 'echo $SSH_CONNECTION'})).stdout
      expect(a).toMatch(new RegExp(` ${ADDRESS.replace(/\./g, '\\.')} ${PORT}\\n$`))
      expect(b).toBe(a) // same client port: the same TCP connection
    })

    it('feeds stdin (secrets travel there, never in the command line), also megabytes of it', async () => {
      const p = pool()
      const secret = `pa$$word 'with' "quotes" $(id)`
      const r = await p.exec(host(), ['cat'], {stdin: secret})
      expect(r.stdout).toBe(secret)
      expect(r.command).toBe('cat')
      const big = randomBytes(3_000_000)
      const s = await p.exec(host(), ['sha256sum'], {stdin: big})
      expect(s.stdout.split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'))
      // A command that never reads its stdin still finishes.
      expect((await p.exec(host(), ['true'], {stdin: big})).exitCode).toBe(0)
    })

    it('passes nasty arguments through the remote shell unchanged', async () => {
      const p = pool()
      const r = await p.exec(host(), ['printf', '%s\\0', ...NASTY])
      expect(r.exitCode).toBe(0)
      expect(r.stdout.split('\0').slice(0, -1)).toEqual(NASTY)
      expect(existsSync('/tmp/murderctl-pwned')).toBe(false)
    })

    it('reports no exit code when the remote process is killed by a signal', async () => {
      const p = pool()
      const r = await p.exec(host(), {shell: 'kill -KILL $$'})
      expect(r.exitCode).toBeNull()
      expect(r.signal).toMatch(/KILL/)
      await expect(p.execOk(host(), {shell: 'kill -KILL $$'})).rejects.toThrow(/killed by signal (SIG)?KILL/)
    })

    it('execOk returns the result on exit 0 and throws RemoteCommandError otherwise', async () => {
      const p = pool()
      expect((await p.execOk(host(), ['echo', 'fine'])).stdout).toBe('fine\n')
      const cmd = ['sh', '-c', 'ls -d /nonexistent-a /nonexistent-b; exit 2']
      const err = await p.execOk(host(), cmd).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RemoteCommandError)
      const e = err as RemoteCommandError
      expect(e).toMatchObject({host: 'testhost', remoteExit: 2, code: 'failed'})
      expect(e.stderr.trim().split('\n')).toEqual([expect.stringMatching(/nonexistent-a/), expect.stringMatching(/nonexistent-b/)])
      expect(e.command).toBe(`sh -c 'ls -d /nonexistent-a /nonexistent-b; exit 2'`)
      expect(e.message).toBe(`command failed: ${e.command} (exit 2): ${e.stderr.split('\n')[0]}`)
      expect(e.oneLine()).toMatch(/^host testhost: /)
    })

    it('streams 200,000 lines of stdout by lines, in order, without buffering them', async () => {
      const p = pool()
      let n = 0
      let inOrder = true
      const r = await p.exec(host(), ['seq', '1', '200000'], {
        onStdoutLine: (l) => {
          n++
          if (l !== String(n)) inOrder = false
        },
      })
      expect({n, inOrder, stdout: r.stdout, exitCode: r.exitCode}).toEqual({n: 200000, inOrder: true, stdout: '', exitCode: 0})
    })

    it('streams multibyte UTF-8 across chunk boundaries and a last line without newline', async () => {
      const p = pool()
      const line = 'äöü✓'.repeat(7)
      const lines: string[] = []
      await p.exec(host(), {shell: `yes '${line}' | head -n 20000; printf 'last-ü'`}, {onStdoutLine: (l) => lines.push(l)})
      expect(lines).toHaveLength(20001)
      expect(lines.slice(0, -1).every((l) => l === line)).toBe(true)
      expect(lines.at(-1)).toBe('last-ü')
    })

    it('fails the command when the line callback throws, and the pool stays usable', async () => {
      const p = pool()
      const err = await p
        .exec(host(), ['seq', '1', '100000'], {
          onStdoutLine: (l) => {
            if (l === '500') throw new Error('parser gave up at 500')
          },
        })
        .catch((e: unknown) => e)
      expect(err).toEqual(new Error('parser gave up at 500'))
      expect((await p.exec(host(), ['echo', 'ok'])).stdout).toBe('ok\n')
    })
  })

  describe('channels per connection', () => {
    const parallel = async (p: SshPool, n: number, tag: string) => {
      const log = join(dir, `parallel-${tag}.log`)
      const results = await Promise.allSettled(
        Array.from({length: n}, () => p.exec(host(), {shell: `echo + >> ${log}; sleep 0.7; echo - >> ${log}; echo $SSH_CONNECTION`})),
      )
      let running = 0
      let peak = 0
      for (const l of existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) {
        running += l === '+' ? 1 : -1
        peak = Math.max(peak, running)
      }
      return {results, peak}
    }

    it('runs 12 commands at once on one connection, at most 4 channels at a time by default', async () => {
      const {results, peak} = await parallel(pool(), 12, 'default')
      const ok = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined))
      expect(ok.every((r) => r?.exitCode === 0)).toBe(true)
      expect(new Set(ok.map((r) => r?.stdout)).size).toBe(1) // one connection
      expect(peak).toBe(4)
    })

    it('runs 12 with maxChannelsPerHost 10 without exceeding sshd MaxSessions 10', async () => {
      const {results, peak} = await parallel(pool({maxChannelsPerHost: 10}), 12, 'ten')
      expect(results.every((r) => r.status === 'fulfilled' && r.value.exitCode === 0)).toBe(true)
      expect(peak).toBe(10)
    })

    it('retries sessions sshd refuses past MaxSessions (12 channels on a MaxSessions 10 server)', async () => {
      const {results, peak} = await parallel(pool({maxChannelsPerHost: 12}), 12, 'twelve')
      expect(results.every((r) => r.status === 'fulfilled' && r.value.exitCode === 0)).toBe(true)
      expect(peak).toBe(10)
    })

    it('gives up with a clear error when the server keeps refusing sessions (MaxSessions 2)', async () => {
      const p = pool({maxChannelsPerHost: 4, knownHostsPath: file('kh-2', hostLine(`[${ADDRESS}]:${PORT2}`, join(dir, 'hostkey.pub')))})
      await server2()
      const results = await Promise.allSettled([1, 2, 3].map(() => p.exec(host({port: PORT2}), ['sleep', '2.5'])))
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2)
      expect(refused).toHaveLength(1)
      expect(refused[0]).toBeInstanceOf(UnreachableError)
      expect(refused[0].message).toMatch(/^sshd on 127\.0\.8\.1:2223 refused a new session 6 times/)
      expect(refused[0].hint).toMatch(/MaxSessions/)
    })
  })

  describe('timeouts and cancellation', () => {
    it('gives up on a command after ssh.commandTimeout, naming the host and the command', async () => {
      const p = pool()
      const started = Date.now()
      const err = await p.exec(host({commandTimeout: 1}), ['sleep', '7.31']).catch((e: unknown) => e)
      const took = Date.now() - started
      reap('7.31')
      expect(err).toBeInstanceOf(RemoteTimeoutError)
      const e = err as RemoteTimeoutError
      expect(e).toMatchObject({host: 'testhost', code: 'timeout', exitCode: 9})
      expect(e.message).toContain('testhost')
      expect(e.message).toContain('sleep 7.31')
      expect(took).toBeGreaterThanOrEqual(1000)
      expect(took).toBeLessThan(2000)
      // The connection is still good for the next command.
      expect((await p.exec(host(), ['echo', 'after'])).stdout).toBe('after\n')
    })

    it("the host ends a command murderctl gave up on: coreutils timeout, a moment after murderctl's own", async () => {
      const p = pool()
      const alive = () => {
        try {
          execFileSync('pgrep', ['-x', '-f', 'sleep 30.35'])
          return true
        } catch {
          return false
        }
      }
      const started = Date.now()
      const err = await p.exec(host({commandTimeout: 1}), ['sleep', '30.35']).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RemoteTimeoutError)
      // Root sessions do not get the channel's signal; the remote deadline (1 s + 2 s) ends it.
      while (alive() && Date.now() - started < 10_000) await sleep(200)
      const gone = !alive()
      reap('30.35')
      expect(gone).toBe(true)
      expect(Date.now() - started).toBeLessThan(6000)
    })

    it('opts.timeoutMs overrides the host setting', async () => {
      const p = pool()
      const started = Date.now()
      const err = await p.exec(host({commandTimeout: 30}), ['sleep', '7.32'], {timeoutMs: 500}).catch((e: unknown) => e)
      reap('7.32')
      expect(err).toBeInstanceOf(RemoteTimeoutError)
      expect(Date.now() - started).toBeLessThan(1500)
    })

    it('cancels a running command through an AbortSignal, and does not start an aborted one', async () => {
      const p = pool()
      const ac = new AbortController()
      setTimeout(() => ac.abort(), 300)
      const started = Date.now()
      const err = await p.exec(host(), ['sleep', '7.33'], {signal: ac.signal}).catch((e: unknown) => e)
      reap('7.33')
      expect(err).toBeInstanceOf(RemoteCommandError)
      expect((err as Error).message).toMatch(/^cancelled: sleep 7\.33/)
      expect(Date.now() - started).toBeLessThan(1500)
      const marker = join(dir, 'should-not-exist')
      await expect(p.exec(host(), ['touch', marker], {signal: AbortSignal.abort()})).rejects.toThrow(/cancelled/)
      expect(existsSync(marker)).toBe(false)
    })
  })

  describe('sudo', () => {
    it('forms `sudo -n --` command lines: argv as is, a shell line through sh -c', () => {
      expect(remoteCommandLine(host({sudo: true}), ['ctl_mboxlist', '-d'])).toBe('sudo -n -- ctl_mboxlist -d')
      expect(remoteCommandLine(host({sudo: true}), {shell: 'a && b > c'})).toBe(`sudo -n -- sh -c 'a && b > c'`)
      expect(remoteCommandLine(host({sudo: true}), {shell: "echo 'x'"})).toBe(`sudo -n -- sh -c 'echo '\\''x'\\'''`)
      expect(remoteCommandLine(host({sudo: true}), ['true'], {noSudo: true})).toBe('true')
      expect(remoteCommandLine(host({sudo: false}), ['true'])).toBe('true')
      // With a deadline, timeout runs inside sudo (as root, so it may signal the command).
      expect(remoteCommandLine(host({sudo: true}), ['ctl_mboxlist', '-d'], {deadlineS: 7})).toBe('sudo -n -- timeout -k 5 7 ctl_mboxlist -d')
      expect(remoteCommandLine(host({sudo: false}), {shell: 'a | b'}, {deadlineS: 7})).toBe(`timeout -k 5 7 sh -c 'a | b'`)
    })

    it('runs through sudo when the host says so (a stand-in sudo that checks its arguments)', async () => {
      const p = pool()
      const r = await p.exec(host({sudo: true}), ['printf', '%s|', 'a b', "it's"])
      expect(r).toMatchObject({command: `sudo -n -- printf '%s|' 'a b' 'it'\\''s'`, exitCode: 0, stdout: "a b|it's|"})
      const s = await p.exec(host({sudo: true}), {shell: 'echo one && echo two | tr t T'})
      expect(s).toMatchObject({command: `sudo -n -- sh -c 'echo one && echo two | tr t T'`, exitCode: 0, stdout: 'one\nTwo\n'})
      const n = await p.exec(host({sudo: true}), ['echo', 'plain'], {noSudo: true})
      expect(n.command).toBe('echo plain')
      // What sudo ran: coreutils timeout (commandTimeout 30 s + 2 s) around the command.
      expect(readFileSync(join(dir, 'home', 'sudo.log'), 'utf8')).toBe(
        `timeout -k 5 32 printf %s| a b it's\ntimeout -k 5 32 sh -c echo one && echo two | tr t T\n`,
      )
    })
  })

  describe('files', () => {
    it('writeFileAtomic replaces a file keeping owner and mode; readFile returns the bytes', async () => {
      const p = pool()
      const f = file('imapd.conf', 'old\n')
      chmodSync(f, 0o640)
      chownSync(f, 65534, 65534) // nobody:nogroup
      const data = Buffer.concat([Buffer.from('servername: b1\n\0\xff'), randomBytes(100_000)])
      await p.writeFileAtomic(host(), f, data)
      expect(readFileSync(f).equals(data)).toBe(true)
      expect((await p.readFile(host(), f)).equals(data)).toBe(true)
      const st = statSync(f)
      expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 65534, 65534])
      expect(readdirSync(dir).filter((n) => n.includes('murderctl-tmp'))).toEqual([])
    })

    it('sets the given mode, or the remote umask default for a new file', async () => {
      const p = pool()
      const withMode = join(dir, 'new-secret.conf')
      await p.writeFileAtomic(host(), withMode, 'password: x\n', 0o600)
      expect(statSync(withMode).mode & 0o7777).toBe(0o600)
      const existing = file('existing.conf', 'a\n')
      chmodSync(existing, 0o644)
      await p.writeFileAtomic(host(), existing, 'b\n', 0o640)
      expect(statSync(existing).mode & 0o7777).toBe(0o640)
      const plain = join(dir, 'new-plain.conf')
      await p.writeFileAtomic(host(), plain, 'x\n')
      const umask = parseInt((await p.exec(host(), {shell: 'umask'})).stdout.trim(), 8)
      expect(statSync(plain).mode & 0o777).toBe(0o666 & ~umask)
      expect(readFileSync(plain, 'utf8')).toBe('x\n')
    })

    it('writes through a symlink to its target, keeping the link', async () => {
      const p = pool()
      const target = file('real.conf', 'old\n')
      const link = join(dir, 'link.conf')
      symlinkSync(target, link)
      await p.writeFileAtomic(host(), link, 'new\n')
      expect(lstatSync(link).isSymbolicLink()).toBe(true)
      expect(readlinkSync(link)).toBe(target)
      expect(readFileSync(target, 'utf8')).toBe('new\n')
    })

    it('works through sudo too', async () => {
      const p = pool()
      const f = file('via-sudo.conf', 'old\n')
      await p.writeFileAtomic(host({sudo: true}), f, 'via sudo\n')
      expect(readFileSync(f, 'utf8')).toBe('via sudo\n')
      expect((await p.readFile(host({sudo: true}), f)).toString()).toBe('via sudo\n')
    })

    it('reports what went wrong with a RemoteCommandError', async () => {
      const p = pool()
      const w = await p.writeFileAtomic(host(), join(dir, 'no-such-dir', 'x.conf'), 'x').catch((e: unknown) => e)
      expect(w).toBeInstanceOf(RemoteCommandError)
      expect((w as Error).message).toMatch(/^cannot write .*no-such-dir\/x\.conf \(exit 1\): .*(No such file or directory|Directory nonexistent)/)
      const r = await p.readFile(host(), join(dir, 'missing.conf')).catch((e: unknown) => e)
      expect(r).toBeInstanceOf(RemoteCommandError)
      expect((r as Error).message).toMatch(/^cannot read .*missing\.conf \(exit 1\): .*No such file or directory/)
    })
  })

  describe('host keys', () => {
    const served = () => pubBlob(join(dir, 'hostkey.pub'))

    it('refuses an unknown key with a one-line message naming host, address and fingerprint', async () => {
      const empty = file('kh-empty', '')
      const err = await pool({knownHostsPath: empty})
        .exec(host(), ['true'])
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(HostKeyError)
      const e = err as HostKeyError
      const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'hostkey.pub')], {encoding: 'utf8'}).split(' ')[1]!
      expect(sha256Fingerprint(served())).toBe(fp)
      expect(e.message).toBe(`unknown host key for testhost (${ADDRESS}:${PORT}): ssh-ed25519 ${fp}`)
      expect(e).toMatchObject({host: 'testhost', code: 'hostKey', exitCode: 5})
      expect(e.oneLine()).not.toContain('\n')
      expect(e.hint).toContain(`ssh-keyscan -p ${PORT} ${ADDRESS} >> ${empty}`)
      expect(e.hint).toContain('--accept-new-host-keys')
      expect(readFileSync(empty, 'utf8')).toBe('')
      // Doing what the hint says works.
      execFileSync('sh', ['-c', `ssh-keyscan -p ${PORT} ${ADDRESS} >> ${empty} 2>/dev/null`])
      expect((await pool({knownHostsPath: empty}).exec(host(), ['true'])).exitCode).toBe(0)
    })

    /** The real OpenSSH client, trusting only known_hosts file `f`, runs `command` on the test server. */
    const viaOpenssh = (f: string, command: string) =>
      execFileSync(
        'ssh',
        [
          '-F',
          '/dev/null',
          '-o',
          'BatchMode=yes',
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          `UserKnownHostsFile=${f}`,
          '-o',
          'GlobalKnownHostsFile=/dev/null',
        ].concat(['-o', 'IdentitiesOnly=yes', '-i', join(dir, 'id'), '-p', String(PORT), `root@${ADDRESS}`, command]),
        {encoding: 'utf8'},
      )

    it('with acceptNewHostKeys records the key under the name SSH uses, in a form OpenSSH reads', async () => {
      const f = join(dir, 'kh-new', 'known_hosts')
      const accepted: unknown[] = []
      const p = pool({knownHostsPath: f, acceptNewHostKeys: true, hashKnownHosts: false, onHostKeyAccepted: (i) => accepted.push(i)})
      expect((await p.exec(host(), ['true'])).exitCode).toBe(0)
      const b64 = served().toString('base64')
      expect(readFileSync(f, 'utf8')).toBe(`[${ADDRESS}]:${PORT} ssh-ed25519 ${b64}\n`)
      expect(accepted).toEqual([{host: 'testhost', address: ADDRESS, port: PORT, keyType: 'ssh-ed25519', fingerprint: sha256Fingerprint(served()), file: f}])
      // A later pool without accept-new trusts it, and so does the real OpenSSH client.
      expect((await pool({knownHostsPath: f}).exec(host(), ['true'])).exitCode).toBe(0)
      const out = viaOpenssh(f, 'echo via-openssh')
      expect(out).toBe('via-openssh\n')
    })

    it("hashes what it records when HashKnownHosts asks (Debian's ssh_config does), and OpenSSH reads it", async () => {
      const f = join(dir, 'kh-hashed-new', 'known_hosts')
      expect((await pool({knownHostsPath: f, acceptNewHostKeys: true, hashKnownHosts: true}).exec(host(), ['true'])).exitCode).toBe(0)
      expect(readFileSync(f, 'utf8')).toMatch(/^\|1\|\S+ ssh-ed25519 \S+\n$/)
      expect(readFileSync(f, 'utf8')).not.toContain(ADDRESS)
      const out = viaOpenssh(f, 'echo hashed-ok')
      expect(out).toBe('hashed-ok\n')
      const ssh = file('ssh_config', 'Host *.example\n  HashKnownHosts no\nHost *\n  HashKnownHosts yes\n')
      expect(hashKnownHostsConfigured([ssh])).toBe(true)
      expect(hashKnownHostsConfigured([file('ssh_config2', '# HashKnownHosts yes\n')])).toBe(false)
    })

    it("goes through a bastion (ssh.proxyJump, as ssh -J), checking the bastion's key like any host's", async () => {
      await server2()
      const both = file('kh-jump', hostLine(`[${ADDRESS}]:${PORT}`, join(dir, 'hostkey.pub')) + hostLine(`[${ADDRESS}]:${PORT2}`, join(dir, 'hostkey.pub')))
      const viaJump = host({proxyJump: `root@${ADDRESS}:${PORT2}`})
      const r = await pool({knownHostsPath: both}).exec(viaJump, ['echo', 'via-bastion'])
      expect(r.stdout).toBe('via-bastion\n')
      const onlyTarget = file('kh-jump-target', hostLine(`[${ADDRESS}]:${PORT}`, join(dir, 'hostkey.pub')))
      const unknownJump = await pool({knownHostsPath: onlyTarget})
        .exec(viaJump, ['true'])
        .catch((e: unknown) => e)
      expect(unknownJump).toBeInstanceOf(HostKeyError)
      expect((unknownJump as Error).message).toMatch(new RegExp(`^unknown host key for ${ADDRESS.replace(/\./g, '\\.')} \\(bastion of testhost\\)`))
      const deadJump = await pool({knownHostsPath: both})
        .exec(host({proxyJump: `root@${ADDRESS}:1`}), ['true'])
        .catch((e: unknown) => e)
      expect(deadJump).toBeInstanceOf(UnreachableError)
      expect((deadJump as Error).message).toMatch(/connection refused on 127\.0\.8\.1:1/)
      // The bastion cannot reach the host: said as such, naming both.
      const unreachableBehind = await pool({knownHostsPath: both})
        .exec(host({proxyJump: `root@${ADDRESS}:${PORT2}`}, {address: '127.0.8.2'}), ['true'])
        .catch((e: unknown) => e)
      expect((unreachableBehind as Error).message).toMatch(/the bastion .* could not reach 127\.0\.8\.2/)
    })

    it('reaches a host by an alias of the OpenSSH client config: HostName, Port, User, IdentityFile from the file', async () => {
      const cfg = file(
        'ssh_config_alias',
        `Host other\n  Port 1\nHost myalias\n  HostName ${ADDRESS}\n  Port ${PORT}\n  User root\n  IdentityFile ${join(dir, 'missing_key')}\n  IdentityFile ${join(dir, 'id')}\nHost *\n  Port 1\n`,
      )
      const alias = host({identity: undefined, port: 22, configFile: cfg}, {address: 'myalias', sshDefaulted: ['user', 'port']})
      const r = await pool({defaultIdentities: [], agentSocket: undefined}).exec(alias, ['echo', 'via-alias'])
      expect(r.stdout).toBe('via-alias\n')
      // The inventory's own port wins over the file's, as ssh's -p wins over Port.
      const err = await pool({defaultIdentities: []})
        .exec({...alias, sshDefaulted: ['user']}, ['true'])
        .catch((e: unknown) => e)
      expect((err as Error).message).toMatch(new RegExp(`connection refused on ${ADDRESS.replace(/\./g, '\\.')}:22`))
    })

    it('reads the system-wide known_hosts too, as OpenSSH does', async () => {
      const global = file('ssh_known_hosts', hostLine(`[${ADDRESS}]:${PORT}`, join(dir, 'hostkey.pub')))
      expect((await pool({knownHostsPath: join(dir, 'kh-none'), globalKnownHostsPath: global}).exec(host(), ['echo', 'global'])).stdout).toBe('global\n')
    })

    it('a line for the inventory name does not vouch for the host: the address SSH uses decides', async () => {
      const f = file('kh-name-only', hostLine(`[testhost]:${PORT}`, join(dir, 'hostkey.pub')))
      const err = await pool({knownHostsPath: f})
        .exec(host(), ['true'])
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(HostKeyError)
      expect((err as Error).message).toMatch(/^unknown host key for testhost/)
    })

    it('refuses a changed key, even with acceptNewHostKeys, and leaves known_hosts alone', async () => {
      for (const names of [`[${ADDRESS}]:${PORT}`, `[testhost]:${PORT},[${ADDRESS}]:${PORT}`]) {
        const content = hostLine(names, join(dir, 'otherhostkey.pub'))
        const f = file('kh-changed', content)
        const err = await pool({knownHostsPath: f, acceptNewHostKeys: true})
          .exec(host(), ['true'])
          .catch((e: unknown) => e)
        expect(err).toBeInstanceOf(HostKeyError)
        expect((err as Error).message).toMatch(
          /^host key for testhost \(127\.0\.8\.1:2222\) has CHANGED: it is now ssh-ed25519 SHA256:\S+, .* has ssh-ed25519: possible man-in-the-middle/,
        )
        expect((err as HostKeyError).hint).toMatch(/never replaces a changed key/)
        expect(readFileSync(f, 'utf8')).toBe(content)
      }
    })

    it('refuses a key marked @revoked', async () => {
      const f = file('kh-revoked', hostLine(`[${ADDRESS}]:${PORT}`, join(dir, 'hostkey.pub')) + hostLine('@revoked *', join(dir, 'hostkey.pub')))
      const err = await pool({knownHostsPath: f, acceptNewHostKeys: true})
        .exec(host(), ['true'])
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(HostKeyError)
      expect((err as Error).message).toMatch(/@revoked/)
    })

    it('reads a known_hosts file hashed by ssh-keygen -H', async () => {
      const f = file('kh-hashed', hostLine(`testhost.example,[${ADDRESS}]:${PORT}`, join(dir, 'hostkey.pub')))
      execFileSync('ssh-keygen', ['-H', '-f', f], {stdio: 'ignore'})
      expect(readFileSync(f, 'utf8')).not.toContain(ADDRESS)
      expect((await pool({knownHostsPath: f}).exec(host(), ['true'])).exitCode).toBe(0)
    })

    it('asks a server with several host keys for the type on file, as OpenSSH does', async () => {
      await server2()
      const h = host({port: PORT2})
      // Only the ECDSA key on file: ssh2 alone would take Ed25519 and cry "changed".
      const ecdsaOnly = file('kh-ecdsa', hostLine(`[${ADDRESS}]:${PORT2}`, join(dir, 'hostkey_ecdsa.pub')))
      expect((await pool({knownHostsPath: ecdsaOnly}).exec(h, ['true'])).exitCode).toBe(0)
      const otherEcdsa = file('kh-ecdsa-other', hostLine(`[${ADDRESS}]:${PORT2}`, join(dir, 'otherhostkey_ecdsa.pub')))
      const err = await pool({knownHostsPath: otherEcdsa, acceptNewHostKeys: true})
        .exec(h, ['true'])
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(HostKeyError)
      expect((err as Error).message).toMatch(/CHANGED: it is now ecdsa-sha2-nistp256 .* has ecdsa-sha2-nistp256/)
    })
  })

  describe('unreachable hosts', () => {
    it('connection refused: UnreachableError naming the host, quickly', async () => {
      const started = Date.now()
      const err = await pool()
        .exec(host({}, {address: '127.0.8.2'}), ['true'])
        .catch((e: unknown) => e)
      expect(Date.now() - started).toBeLessThan(1000)
      expect(err).toBeInstanceOf(UnreachableError)
      expect(err).toMatchObject({message: `connection refused on 127.0.8.2:${PORT}`, host: 'testhost', code: 'unreachable', exitCode: 4})
    })

    it('authentication failure names the user', async () => {
      const err = await pool()
        .exec(host({identity: join(dir, 'stranger')}), ['true'])
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UnreachableError)
      expect(err).toMatchObject({message: `authentication failed for user root on ${ADDRESS}:${PORT}`, host: 'testhost'})
    })

    it('a server that never answers the handshake times out after ssh.connectTimeout', async () => {
      silent = createServer((s) => {
        silentSockets.add(s)
        s.resume()
      })
      await new Promise<void>((r) => silent!.listen(SILENT.port, SILENT.address, r))
      expect(await canConnect(SILENT.address, SILENT.port)).toBe(true)
      const started = Date.now()
      const err = await pool()
        .exec(host({port: SILENT.port, connectTimeout: 1}, {address: SILENT.address}), ['true'])
        .catch((e: unknown) => e)
      expect(Date.now() - started).toBeLessThan(2000)
      expect(err).toBeInstanceOf(UnreachableError)
      expect((err as Error).message).toBe(`no SSH answer from ${SILENT.address}:${SILENT.port} within 1s`)
    })

    it('an unreadable identity file is an inventory problem', async () => {
      const err = await pool()
        .exec(host({identity: join(dir, 'no-such-key')}), ['true'])
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(InventoryError)
      expect((err as Error).message).toMatch(/cannot read the SSH key .*no-such-key of host testhost: ENOENT/)
    })

    it('without ssh.identity it uses the ssh-agent, and says so when there is none', async () => {
      const saved = process.env.SSH_AUTH_SOCK
      delete process.env.SSH_AUTH_SOCK
      let agent: ChildProcess | undefined
      try {
        const none = await pool({defaultIdentities: []})
          .exec(host({identity: undefined}), ['true'])
          .catch((e: unknown) => e)
        expect(none).toBeInstanceOf(UnreachableError)
        expect((none as Error).message).toMatch(/no SSH credentials for testhost/)
        const sock = join(dir, 'agent.sock')
        agent = spawn('ssh-agent', ['-D', '-a', sock], {stdio: 'ignore'})
        for (let i = 0; i < 100 && !existsSync(sock); i++) await sleep(20)
        execFileSync('ssh-add', ['-q', join(dir, 'id')], {env: {...process.env, SSH_AUTH_SOCK: sock}, stdio: 'ignore'})
        const r = await pool({agentSocket: sock, defaultIdentities: []}).exec(host({identity: undefined}), ['echo', 'agent'])
        expect(r.stdout).toBe('agent\n')
        // Without an agent, OpenSSH's default keys (~/.ssh/id_*) are tried, as ssh does.
        delete process.env.SSH_AUTH_SOCK
        const d = await pool({defaultIdentities: [join(dir, 'missing_key'), join(dir, 'id')]}).exec(host({identity: undefined}), ['echo', 'default-key'])
        expect(d.stdout).toBe('default-key\n')
      } finally {
        if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved
        if (agent && agent.exitCode === null) {
          const gone = new Promise((r) => agent!.once('exit', r))
          agent.kill('SIGTERM')
          await gone
        }
      }
    })

    it('a connection lost during a command fails that command; the next one reconnects', async () => {
      const p = pool()
      const before = (await p.exec(host(), {shell: 'echo $SSH_CONNECTION'})).stdout
      // The command's parent is the remote `timeout`; its parent, this connection's sshd session process.
      const err = await p.exec(host(), {shell: 'sleep 5.41 & kill -KILL $(ps -o ppid= -p $PPID); wait'}).catch((e: unknown) => e)
      reap('5.41')
      expect(err).toBeInstanceOf(UnreachableError)
      expect((err as Error).message).toMatch(/^lost the SSH connection to 127\.0\.8\.1:2222 while running: sleep 5\.41 &/)
      const after = (await p.exec(host(), {shell: 'echo $SSH_CONNECTION'})).stdout
      expect(after).toMatch(/127\.0\.8\.1 2222/)
      expect(after).not.toBe(before)
    })

    it('refuses to run on a closed pool', async () => {
      const p = pool()
      await p.exec(host(), ['true'])
      await p.close()
      await expect(p.exec(host(), ['true'])).rejects.toThrow(BugError)
    })
  })
})

describe('LineSplitter', () => {
  it('splits at every chunk boundary alike, UTF-8 split mid-character included', () => {
    const text = 'ä✓b\n\nzweite Zeile ß\r\n€ ohne Zeilenende'
    const bytes = Buffer.from(text)
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (let cut2 = cut; cut2 <= bytes.length; cut2 += 3) {
        const lines: string[] = []
        const s = new LineSplitter((l) => lines.push(l))
        s.write(bytes.subarray(0, cut))
        s.write(bytes.subarray(cut, cut2))
        s.write(bytes.subarray(cut2))
        s.end()
        expect(lines).toEqual(['ä✓b', '', 'zweite Zeile ß\r', '€ ohne Zeilenende'])
      }
    }
  })

  it('gives no extra empty line after a final newline, and nothing for no input', () => {
    const lines: string[] = []
    const s = new LineSplitter((l) => lines.push(l))
    s.write(Buffer.from('a\nb\n'))
    s.end()
    expect(lines).toEqual(['a', 'b'])
    const none: string[] = []
    new LineSplitter((l) => none.push(l)).end()
    expect(none).toEqual([])
  })
})
