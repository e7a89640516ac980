// A real Cyrus murder on this machine: one mount namespace and loopback address per host,
// each with its own /etc/imapd.conf, /etc/cyrus.conf, Cyrus directories, cyrus-master and sshd.
import {spawn} from 'node:child_process'
import {chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {stringify} from 'yaml'
import {AbortError} from '../errors.js'
import {ensureSystemPackages, isRoot} from './system.js'
import {
  CSYNC_PORT,
  LAB_ADMIN,
  mupdatePortOf,
  type RenderContext,
  renderBootScript,
  renderCyrusConf,
  renderEtcHosts,
  renderImapdConf,
  renderMoveAddressScript,
  renderServiceScript,
  renderServices,
  renderSshdConfig,
} from './render.js'
import {listsToDisk, pendingPushes, seedLab, seedsInBulk, waitConverged, waitReplicated} from './seed.js'
import {alive, hostDir, LAB_PASSWORD_FILE, labExec, type LabState, processesInNamespace, readLabState, statePath, waitPort} from './state.js'
import {type LabHost, type LabTopology, labHosts, validBase} from './topology.js'

export {labExec, labPassword, LAB_PASSWORD_FILE, type LabState, readLabState, waitPort} from './state.js'

const LAB_USERS = [LAB_ADMIN, 'alice', 'bob', 'carol', 'dave']

export interface LabUpOptions {
  dir: string
  topology: LabTopology
  base: string
  mailboxes: number
  /** The master's MUPDATE port (default 3905): to rehearse on a murder that uses another one. */
  mupdatePort?: number
  log?: (msg: string) => void
}

async function prepareFiles(ctx: RenderContext, memoryDb: boolean): Promise<void> {
  const {dir} = ctx
  mkdirSync(join(dir, 'bin'), {recursive: true})
  const password = ctx.password
  writeFileSync(join(dir, LAB_PASSWORD_FILE), `${password}\n`, {mode: 0o600})
  for (const key of ['id_ed25519', 'ssh_host_ed25519_key']) {
    rmSync(join(dir, key), {force: true})
    rmSync(join(dir, `${key}.pub`), {force: true})
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `murderctl-lab-${key}`, '-f', join(dir, key)])
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id_ed25519.pub')))
  const hostKey = readFileSync(join(dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
  writeFileSync(join(dir, 'known_hosts'), ctx.hosts.map((h) => `${h.name},${h.address} ${hostKey}\n`).join(''))
  writeFileSync(join(dir, 'etc-hosts'), renderEtcHosts(ctx))
  writeFileSync(join(dir, 'services'), renderServices(readFileSync('/etc/services', 'utf8')))
  writeFileSync(join(dir, 'bin', 'cyrus-service'), renderServiceScript(), {mode: 0o755})
  writeFileSync(join(dir, 'bin', 'move-address'), renderMoveAddressScript(ctx), {mode: 0o755})
  for (const h of ctx.hosts) {
    const hd = hostDir(dir, h.name)
    rmSync(hd, {recursive: true, force: true})
    for (const sub of ['etc', 'etc-work', 'lib/db', 'lib/socket', 'lib/sync', 'lib/log', 'lib/proc', 'lib/user', 'lib/quota', 'lib/msg', 'spool/mail'])
      mkdirSync(join(hd, sub), {recursive: true})
    writeFileSync(join(hd, 'etc', 'imapd.conf'), renderImapdConf(h, ctx, {memoryDb}))
    writeFileSync(join(hd, 'etc', 'cyrus.conf'), renderCyrusConf(h, ctx, {seeding: true}))
    copyFileSync(join(dir, 'etc-hosts'), join(hd, 'etc', 'hosts'))
    copyFileSync(join(dir, 'services'), join(hd, 'etc', 'services'))
    writeFileSync(join(hd, 'sshd_config'), renderSshdConfig(h, ctx))
    writeFileSync(join(hd, 'boot.sh'), renderBootScript(h, ctx), {mode: 0o755})
    await execa('chown', ['-R', 'cyrus:mail', join(hd, 'lib'), join(hd, 'spool')])
    chmodSync(join(hd, 'lib'), 0o750)
  }
  // One sasldb for the lab; each user exists once per realm (servername), as Cyrus looks them up.
  const sasldb = join(dir, 'sasldb2')
  rmSync(sasldb, {force: true})
  const realms = [...new Set(ctx.hosts.map((h) => h.servername))]
  for (const realm of realms) for (const user of LAB_USERS) await execa('saslpasswd2', ['-p', '-c', '-f', sasldb, '-u', realm, user], {input: password})
  await execa('chown', ['cyrus:mail', sasldb])
  chmodSync(sasldb, 0o640)
}

async function startRsyslog(): Promise<number | undefined> {
  const running = await execa('pgrep', ['-x', 'rsyslogd'], {reject: false})
  if (running.exitCode === 0) return undefined
  await execa('rsyslogd', [], {reject: false})
  const again = await execa('pgrep', ['-x', 'rsyslogd'], {reject: false})
  return again.exitCode === 0 ? Number(again.stdout.split('\n')[0]) : undefined
}

async function bootHost(ctx: RenderContext, h: LabHost): Promise<number> {
  const hd = hostDir(ctx.dir, h.name)
  rmSync(join(hd, 'namespace-ready'), {force: true})
  const out = openSync(join(hd, 'boot.log'), 'w')
  const child = spawn('unshare', ['-m', '--propagation', 'private', '--', '/bin/sh', join(hd, 'boot.sh')], {
    detached: true,
    stdio: ['ignore', out, out],
  })
  child.unref()
  const pid = child.pid!
  const deadline = Date.now() + 15_000
  while (!existsSync(join(hd, 'namespace-ready'))) {
    if (!alive(pid) || Date.now() > deadline)
      throw new AbortError(`lab host ${h.name} did not boot: ${readFileSync(join(hd, 'boot.log'), 'utf8').trim().split('\n').pop() ?? ''}`, {host: h.name})
    await new Promise((r) => setTimeout(r, 50))
  }
  return pid
}

async function startCyrus(ctx: RenderContext, h: LabHost): Promise<void> {
  const r = await labExec(ctx.dir, h.name, [join(ctx.dir, 'bin', 'cyrus-service'), 'start'], {reject: false})
  if (r.exitCode !== 0) throw new AbortError(`cyrus-master did not start on lab host ${h.name}: ${r.stderr}`, {host: h.name})
  const ports = [22]
  if (h.role === 'mupdate-master') ports.push(mupdatePortOf(ctx))
  else ports.push(143)
  if (h.role === 'frontend') ports.push(mupdatePortOf(ctx))
  if (h.role === 'replica') ports.push(CSYNC_PORT)
  await Promise.all(ports.map((p) => waitPort(h.address, p, 30_000)))
}

async function enableUnifiedSlave(ctx: RenderContext, h: LabHost): Promise<void> {
  // Written from inside the host: /etc there is an overlay, not to be changed from outside.
  const script = 'cat > /etc/cyrus.conf.new && mv /etc/cyrus.conf.new /etc/cyrus.conf && kill -HUP "$(cat /run/cyrus-master.pid)"'
  await labExec(ctx.dir, h.name, ['sh', '-c', script], {input: renderCyrusConf(h, ctx)})
  await waitPort(h.address, mupdatePortOf(ctx), 30_000)
}

/** Wait until every mupdate slave (frontends, unified backends) holds its connection to the master, as after a first boot. */
async function waitSlavesConnected(ctx: RenderContext, hosts: LabHost[], timeoutMs: number): Promise<void> {
  const slaves = hosts.filter((h) => h.role === 'frontend' || (ctx.topology === 'unified' && h.role === 'backend'))
  const script = [
    'p=$(cat /run/cyrus-master.pid) || exit 1',
    'for c in $(pgrep -P "$p" -x mupdate); do',
    `  ss -Htnp state established '( dport = :${mupdatePortOf(ctx)} )' | grep -q "pid=$c," && exit 0`,
    'done',
    'exit 1',
  ].join('\n')
  const deadline = Date.now() + timeoutMs
  for (const h of slaves) {
    while ((await labExec(ctx.dir, h.name, ['sh', '-c', script], {reject: false})).exitCode !== 0) {
      if (Date.now() > deadline) throw new AbortError(`the mupdate slave on lab host ${h.name} did not connect to the master`, {host: h.name})
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}

function writeInventory(ctx: RenderContext): string {
  const path = join(ctx.dir, 'inventory.yaml')
  const service = join(ctx.dir, 'bin', 'cyrus-service')
  const doc = {
    name: 'lab',
    mode: ctx.topology,
    knownHosts: 'known_hosts',
    stateDir: 'state',
    imap: {user: LAB_ADMIN, passwordFile: LAB_PASSWORD_FILE},
    defaults: {
      ssh: {user: 'root', identity: 'id_ed25519', connectTimeout: 5, commandTimeout: 600},
      cyrus: {pidFile: '/run/cyrus-master.pid', stop: `${service} stop`, start: `${service} start`},
    },
    hosts: ctx.hosts.map((h) => ({
      name: h.name,
      role: h.role,
      address: h.address,
      ...(h.servername !== h.name ? {servername: h.servername} : {}),
      ...(h.replicaOf ? {replicaOf: h.replicaOf} : {}),
    })),
    // The service address moves through the lab's own hosts files; a lab rehearses failover
    // and failback back to back, so no anti-flapping period.
    pairs: ctx.hosts
      .filter((h) => h.role === 'replica' && h.replicaOf)
      .map((r) => ({
        backend: r.replicaOf,
        moveAddress: `${join(ctx.dir, 'bin', 'move-address')} {servername} {new.address} {old}`,
        minIntervalSeconds: 0,
        replicationTimeoutSeconds: 30,
        probe: {user: LAB_ADMIN, passwordFile: LAB_PASSWORD_FILE, mailbox: 'user.alice'},
      })),
  }
  writeFileSync(path, `# murderctl inventory for the local lab in ${ctx.dir}\n${stringify(doc)}`)
  return path
}

export async function labUp(opts: LabUpOptions): Promise<LabState> {
  const log = opts.log ?? (() => {})
  if (!isRoot()) throw new AbortError('the lab needs root (mount namespaces, sshd, cyrus-master)', {step: 'lab up', hint: 'run it as root, e.g. with sudo'})
  if (!validBase(opts.base)) throw new AbortError(`--base ${opts.base} is not a 127.x.y prefix`, {step: 'lab up', hint: 'use e.g. --base 127.0.10'})
  const dir = resolve(opts.dir)
  const existing = readLabState(dir)
  if (existing?.hosts.some((h) => alive(h.pid)))
    throw new AbortError(`a lab is already running in ${dir}`, {step: 'lab up', hint: `murderctl lab down --dir ${dir}`})
  await ensureSystemPackages(log)
  mkdirSync(dir, {recursive: true})
  // Cyrus runs as the cyrus user and reads the lab's sasldb here: the folder must be traversable.
  chmodSync(dir, 0o755)
  const hosts = labHosts(opts.topology, opts.base)
  const ctx: RenderContext = {dir, topology: opts.topology, hosts, password: `lab-${Math.random().toString(36).slice(2, 10)}`, mupdatePort: opts.mupdatePort}
  // A large lab is seeded with every mailboxes.db in memory (no entry waits for the disk), then the lists go to disk.
  const memoryDb = seedsInBulk(opts.mailboxes)
  const started = performance.now()
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`
  log(`writing ${hosts.length} hosts' files in ${dir}`)
  await prepareFiles(ctx, memoryDb)
  const state: LabState = {
    dir,
    topology: opts.topology,
    base: opts.base,
    hosts: [],
    inventory: writeInventory(ctx),
    sshKey: join(dir, 'id_ed25519'),
    ...(opts.mupdatePort ? {mupdatePort: opts.mupdatePort} : {}),
  }
  state.rsyslogPid = await startRsyslog()
  const save = () => writeFileSync(statePath(dir), JSON.stringify(state, null, 2))
  try {
    // The master first, so backends' mupdatepush at start finds it; then everyone else.
    const order = [...hosts.filter((h) => h.role === 'mupdate-master'), ...hosts.filter((h) => h.role !== 'mupdate-master')]
    for (const h of order) {
      const pid = await bootHost(ctx, h)
      state.hosts.push({...h, pid})
      save()
    }
    const startAll = async () => {
      await startCyrus(ctx, order[0])
      await Promise.all(order.slice(1).map((h) => startCyrus(ctx, h)))
    }
    log('starting cyrus-master on every host')
    await startAll()
    save()
    const total = await seedLab(state, ctx.password, opts.mailboxes, log)
    log(`${total} mailboxes seeded (${elapsed()})`)
    if (memoryDb) {
      // The lists to disk, the unified backends' slaves on, then one restart: every slave takes
      // the master's list in one transaction, as a real murder's members do when they start.
      log(`moving every host's mailboxes.db from memory to disk (${elapsed()})`)
      const byName = (name: string) => hosts.find((h) => h.name === name)!
      await listsToDisk(state, join(dir, 'bin', 'cyrus-service'), (name) => ({
        imapdConf: renderImapdConf(byName(name), ctx),
        cyrusConf: renderCyrusConf(byName(name), ctx),
      }))
      await startAll()
      await waitSlavesConnected(ctx, hosts, 60_000)
      log(`waiting for every slave to take the master's ${total} mailboxes (${elapsed()})`)
      await waitConverged(state, total)
      const pending = (await pendingPushes(state)).filter((p) => p.lines.length > 0)
      if (pending.length > 0)
        throw new AbortError(`the seeded murder did not converge: ${pending.map((p) => `${p.backend}: ${p.lines[0]} (${p.lines.length} lines)`).join('; ')}`, {
          step: 'lab up',
        })
      log(`lists on disk, murder restarted and converged (${elapsed()})`)
    } else if (ctx.topology === 'unified') {
      log('enabling the mupdate slaves on the unified backends')
      await Promise.all(state.hosts.filter((h) => h.role === 'backend').map((h) => enableUnifiedSlave(ctx, h)))
      await waitConverged(state, total)
    }
    log(`waiting for the replicas to catch up (${elapsed()})`)
    await waitReplicated(state, opts.mailboxes)
  } catch (error) {
    save()
    await labDown({dir}).catch(() => {})
    throw error
  }
  save()
  return state
}

export async function labDown(opts: {dir: string; purge?: boolean}): Promise<{stopped: string[]}> {
  const dir = resolve(opts.dir)
  const state = readLabState(dir)
  const stopped: string[] = []
  if (state) {
    const ourNs = readlinkSync('/proc/self/ns/mnt')
    await Promise.all(
      state.hosts.map(async (h) => {
        if (!alive(h.pid)) return
        // Stop cyrus-master cleanly first so its databases are closed, then everything else.
        await labExec(dir, h.name, [join(dir, 'bin', 'cyrus-service'), 'stop'], {reject: false, timeout: 40_000})
        const pids = processesInNamespace(h.pid).filter((p) => p !== process.pid && readlinkSync(`/proc/${p}/ns/mnt`) !== ourNs)
        for (const p of pids) {
          try {
            process.kill(p, 'SIGTERM')
          } catch {}
        }
        const deadline = Date.now() + 5000
        while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        for (const p of pids.filter(alive)) {
          try {
            process.kill(p, 'SIGKILL')
          } catch {}
        }
        stopped.push(h.name)
      }),
    )
    if (state.rsyslogPid && alive(state.rsyslogPid)) process.kill(state.rsyslogPid, 'SIGTERM')
    rmSync(statePath(dir), {force: true})
  }
  if (opts.purge) rmSync(dir, {recursive: true, force: true})
  return {stopped}
}
