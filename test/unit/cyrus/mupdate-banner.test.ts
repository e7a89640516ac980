import {readFileSync} from 'node:fs'
import net from 'node:net'
import {afterEach, describe, expect, it} from 'vitest'
import {UnexpectedOutputError} from '../../../src/errors.js'
import {parseMupdateBanner, probeMupdate} from '../../../src/cyrus/mupdate-banner.js'

// Real greetings of Debian's Cyrus 3.6.1 mupdate (see test/fixtures/cyrus/README.md).
const raw = (name: string): Buffer => readFileSync(new URL(`../../fixtures/cyrus/${name}`, import.meta.url))

describe('parseMupdateBanner', () => {
  it('master', () => {
    expect(parseMupdateBanner(raw('banner-master.raw').toString('utf8'))).toEqual({
      role: 'master',
      servername: 'mm',
      implementation: 'Cyrus IMAP',
      version: '3.6.1-Debian-3.6.1-4+deb12u5',
      auth: ['PLAIN'],
      starttls: false,
      compress: ['DEFLATE'],
      partialUpdate: true,
    })
  })

  it('slave', () => {
    expect(parseMupdateBanner(raw('banner-slave.raw').toString('utf8').split('\n'))).toEqual({
      role: 'slave',
      servername: 'fe',
      implementation: 'Cyrus IMAP',
      version: '3.6.1-Debian-3.6.1-4+deb12u5',
      masterUrl: 'mupdate://127.0.77.10:39050',
      master: '127.0.77.10',
      auth: ['PLAIN'],
      starttls: false,
      compress: ['DEFLATE'],
      partialUpdate: true,
    })
  })

  it('BYE (with the stray NUL 3.6.1 sends after it)', () => {
    expect(raw('bye-master-busy.raw').at(-1)).toBe(0)
    expect(parseMupdateBanner(raw('bye-master-busy.raw').toString('utf8'))).toMatchObject({role: 'unavailable', bye: 'Server Unable'})
    expect(parseMupdateBanner(['* BYE no longer ready'])).toMatchObject({role: 'unavailable', bye: 'no longer ready'})
  })

  it('STARTTLS, several mechanisms, unknown capabilities, 2.x greetings', () => {
    const b = parseMupdateBanner([
      '* AUTH "PLAIN" "GSSAPI"',
      '* STARTTLS',
      '* X-FUTURE "thing"',
      '* PARTIAL-UPDATE',
      '* OK MUPDATE "fe1" "Cyrus IMAP" "3.8.0" "mupdate://[2001:db8::1]:3905"',
    ])
    expect(b).toMatchObject({role: 'slave', auth: ['PLAIN', 'GSSAPI'], starttls: true, master: '2001:db8::1'})
    expect(parseMupdateBanner('* OK MUPDATE "mm" "Cyrus Murder" "v2.2.12" "(master)"\r\n* AUTH "PLAIN"\r\n')).toMatchObject({
      role: 'master',
      implementation: 'Cyrus Murder',
      auth: [],
    })
    expect(parseMupdateBanner('* OK MUPDATE "fe" "Cyrus Murder" "v2.2.12" "(slave)"\r\n')).toMatchObject({role: 'slave'})
  })

  it('refuses what is not a MUPDATE greeting', () => {
    expect(() => parseMupdateBanner('* OK [CAPABILITY IMAP4rev1] b1 Cyrus IMAP ready\r\n')).toThrow(UnexpectedOutputError)
    expect(() => parseMupdateBanner('SSH-2.0-OpenSSH_9.2p1\r\n')).toThrow(/not an untagged line/)
    expect(() => parseMupdateBanner('* AUTH "PLAIN"\r\n')).toThrow(/no "\* OK MUPDATE"/)
    expect(() => parseMupdateBanner('* OK MUPDATE "mm" "Cyrus IMAP" "3.6.1" "sideways"\r\n')).toThrow(/unknown role/)
  })
})

// ---- probeMupdate against tiny servers -----------------------------------------------------------

const servers: net.Server[] = []
const sockets: net.Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

interface Tiny {
  port: number
  received: () => string
}

async function tiny(onConnection: (socket: net.Socket) => void): Promise<Tiny> {
  let received = ''
  const server = net.createServer((socket) => {
    sockets.push(socket)
    socket.on('data', (d) => (received += d.toString('utf8')))
    socket.on('error', () => {})
    onConnection(socket)
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {port: (server.address() as net.AddressInfo).port, received: () => received}
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

const waitFor = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
}

describe('probeMupdate', () => {
  it('reads a master greeting (sent in pieces) and logs out', async () => {
    const bytes = raw('banner-master.raw')
    const srv = await tiny((s) => {
      s.write(bytes.subarray(0, 10))
      setTimeout(() => s.write(bytes.subarray(10)), 20)
      s.on('data', (d) => {
        if (d.toString().startsWith('X LOGOUT')) s.end('X OK "bye-bye"\r\n')
      })
    })
    const r = await probeMupdate('127.0.0.1', srv.port, 2000)
    expect(r.reachable).toBe(true)
    if (!r.reachable) return
    expect(r.banner).toMatchObject({role: 'master', servername: 'mm'})
    expect(r.connectMs).toBeGreaterThanOrEqual(0)
    expect(r.bannerMs).toBeGreaterThanOrEqual(r.connectMs)
    expect(r.lines).toHaveLength(4)
    await waitFor(() => srv.received() !== '')
    expect(srv.received()).toBe('X LOGOUT\r\n')
  })

  it('reads the greeting through a stream opened another way (an SSH tunnel), and says when the tunnel is refused', async () => {
    const srv = await tiny((s) => s.write(raw('banner-slave.raw')))
    const tunnel = () =>
      new Promise<net.Socket>((res) => {
        const s = net.connect(srv.port, '127.0.0.1')
        s.once('connect', () => res(s))
      })
    const r = await probeMupdate('fe.behind.bastion', 3905, 2000, tunnel)
    expect(r).toMatchObject({reachable: true, address: 'fe.behind.bastion', port: 3905, banner: {role: 'slave'}})
    const refused = await probeMupdate('fe.behind.bastion', 3905, 2000, () => Promise.reject(new Error('(SSH) Channel open failure: Connection refused')))
    expect(refused).toMatchObject({reachable: false, reason: 'refused'})
  })

  it('reads a slave greeting', async () => {
    const srv = await tiny((s) => s.write(raw('banner-slave.raw')))
    const r = await probeMupdate('127.0.0.1', srv.port, 2000)
    expect(r).toMatchObject({reachable: true, banner: {role: 'slave', servername: 'fe', master: '127.0.77.10'}})
  })

  it('reports a BYE as reachable but unavailable', async () => {
    const srv = await tiny((s) => s.end(raw('bye-master-busy.raw')))
    const r = await probeMupdate('127.0.0.1', srv.port, 2000)
    expect(r).toMatchObject({reachable: true, banner: {role: 'unavailable', bye: 'Server Unable'}})
  })

  it('a refused port is a result, not an exception', async () => {
    const r = await probeMupdate('127.0.0.1', await closedPort(), 2000)
    expect(r).toMatchObject({reachable: false, reason: 'refused', connected: false})
  })

  it('a server that never answers times out (and says the port was open)', async () => {
    const srv = await tiny(() => {})
    const t0 = Date.now()
    const r = await probeMupdate('127.0.0.1', srv.port, 300)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280)
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(r).toMatchObject({reachable: false, reason: 'timeout', connected: true})
    if (!r.reachable) expect(r.message).toMatch(/accepted the connection but sent no MUPDATE greeting/)
  })

  it('a server that hangs up, or speaks another protocol', async () => {
    const hangup = await tiny((s) => s.end('* AUTH "PLAIN"\r\n'))
    expect(await probeMupdate('127.0.0.1', hangup.port, 2000)).toMatchObject({reachable: false, reason: 'closed', connected: true})
    const imap = await tiny((s) => s.write('* OK [CAPABILITY IMAP4rev1] ready\r\n'))
    const r = await probeMupdate('127.0.0.1', imap.port, 2000)
    expect(r).toMatchObject({reachable: false, reason: 'protocol'})
    if (!r.reachable) expect(r.lines).toEqual(['* OK [CAPABILITY IMAP4rev1] ready'])
  })

  it('a BYE without a final newline still counts', async () => {
    const srv = await tiny((s) => s.end('* BYE "Server Unable"'))
    expect(await probeMupdate('127.0.0.1', srv.port, 2000)).toMatchObject({reachable: true, banner: {role: 'unavailable'}})
  })
})
