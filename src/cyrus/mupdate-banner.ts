// The MUPDATE greeting (RFC 3656; imap/mupdate.c in 3.6.1) and a no-login TCP probe.
//
// A 3.6.1 master greets with (seen on Debian's build):
//   * AUTH "PLAIN"
//   * COMPRESS "DEFLATE"
//   * PARTIAL-UPDATE
//   * OK MUPDATE "mm" "Cyrus IMAP" "3.6.1-Debian-3.6.1-4+deb12u5" "(master)"
// a slave ends with `"mupdate://<its mupdate_server>"` instead of `"(master)"`, and a server
// that will not talk says `* BYE "Server Unable"` (3.6.1 sends a stray NUL after that line).
// Cyrus 2.x put the OK line first and said "Cyrus Murder" and "(slave)".
// A slave that has never synchronised with its master accepts the TCP connection but sends
// nothing at all.
import net from 'node:net'
import {type Duplex, PassThrough} from 'node:stream'
import {performance} from 'node:perf_hooks'
import {z} from 'zod'
import {UnexpectedOutputError} from '../errors.js'
import {excerpt} from './lines.js'

const Capabilities = {
  /** SASL mechanisms from `* AUTH` (empty: none offered). */
  auth: z.array(z.string()),
  starttls: z.boolean(),
  compress: z.array(z.string()),
  partialUpdate: z.boolean(),
}

export const MupdateBanner = z.discriminatedUnion('role', [
  z.object({
    role: z.literal('master'),
    servername: z.string(),
    implementation: z.string(),
    version: z.string(),
    ...Capabilities,
  }),
  z.object({
    role: z.literal('slave'),
    servername: z.string(),
    implementation: z.string(),
    version: z.string(),
    /** `mupdate://host[:port]` (absent in 2.x's "(slave)" greeting). */
    masterUrl: z.string().optional(),
    /** The host part of masterUrl. */
    master: z.string().optional(),
    ...Capabilities,
  }),
  z.object({
    role: z.literal('unavailable'),
    /** The BYE text, unquoted. */
    bye: z.string(),
    ...Capabilities,
  }),
])
export type MupdateBanner = z.infer<typeof MupdateBanner>

/** Quoted strings of a line: `"a" "b\"c"` → ['a', 'b"c']. */
function quotedStrings(s: string): string[] {
  const out: string[] = []
  const re = /"((?:[^"\\]|\\.)*)"/g
  for (let m = re.exec(s); m; m = re.exec(s)) out.push(m[1]!.replace(/\\(.)/g, '$1'))
  return out
}

function clean(line: string): string {
  return line.replace(/[\r\n\0]+$/, '').replace(/^\0+/, '')
}

export type BannerScan = {done: false} | {done: true; banner: MupdateBanner}

/** Incremental banner reader: feed lines until it says done. Throws on a non-MUPDATE greeting. */
export function createBannerReader(ctx: {host?: string} = {}): {push(line: string): BannerScan; readonly lines: string[]} {
  const caps = {auth: [] as string[], starttls: false, compress: [] as string[], partialUpdate: false}
  const lines: string[] = []
  const bad = (why: string, line: string): never => {
    throw new UnexpectedOutputError(`MUPDATE greeting: ${why}: ${excerpt(line)}`, {
      host: ctx.host,
      hint: 'is this port really a Cyrus mupdate service? (3905 by default)',
    })
  }
  return {
    lines,
    push(raw: string): BannerScan {
      const line = clean(raw)
      lines.push(line)
      if (line.trim() === '') return {done: false}
      if (!line.startsWith('* ')) return bad('not an untagged line', line)
      const rest = line.slice(2)
      const word = /^\S+/.exec(rest)?.[0].toUpperCase() ?? ''
      switch (word) {
        case 'AUTH':
          caps.auth.push(...quotedStrings(rest.slice(4)))
          return {done: false}
        case 'STARTTLS':
          caps.starttls = true
          return {done: false}
        case 'COMPRESS':
          caps.compress.push(...quotedStrings(rest.slice(8)))
          return {done: false}
        case 'PARTIAL-UPDATE':
          caps.partialUpdate = true
          return {done: false}
        case 'BYE': {
          const text = rest.slice(3).trim()
          const q = quotedStrings(text)
          return {done: true, banner: {role: 'unavailable', bye: q.length === 1 && text.startsWith('"') ? q[0]! : text, ...caps}}
        }
        case 'OK': {
          if (!/^OK\s+MUPDATE\b/i.test(rest)) return bad('an OK greeting that is not MUPDATE', line)
          const [servername, implementation, version, role] = quotedStrings(rest)
          if (servername === undefined || implementation === undefined || version === undefined || role === undefined) {
            return bad('incomplete OK MUPDATE line', line)
          }
          if (role === '(master)') return {done: true, banner: {role: 'master', servername, implementation, version, ...caps}}
          if (role === '(slave)') return {done: true, banner: {role: 'slave', servername, implementation, version, ...caps}}
          const url = /^mupdate:\/\/([^/]*)/i.exec(role)
          if (!url) return bad(`unknown role ${JSON.stringify(role)}`, line)
          const hostPort = url[1]!
          const master = /^\[([^\]]+)\]/.exec(hostPort)?.[1] ?? hostPort.replace(/:\d+$/, '')
          return {done: true, banner: {role: 'slave', servername, implementation, version, masterUrl: role, master, ...caps}}
        }
        default:
          return {done: false} // a capability this version does not know
      }
    },
  }
}

/** Parse a greeting already read (lines, or the raw text). */
export function parseMupdateBanner(lines: readonly string[] | string, ctx: {host?: string} = {}): MupdateBanner {
  const list = typeof lines === 'string' ? lines.split('\n') : lines
  const reader = createBannerReader(ctx)
  for (const line of list) {
    const r = reader.push(line)
    if (r.done) return r.banner
  }
  throw new UnexpectedOutputError('MUPDATE greeting: no "* OK MUPDATE" or "* BYE" line', {
    host: ctx.host,
    hint: 'the server closed or stopped before it finished its greeting',
  })
}

export const ProbeFailure = z.enum(['refused', 'timeout', 'closed', 'unreachable', 'protocol', 'error'])
export type ProbeFailure = z.infer<typeof ProbeFailure>

export type MupdateProbeResult =
  | {
      reachable: true
      address: string
      port: number
      banner: MupdateBanner
      /** Milliseconds from starting to connect to the TCP connection being up. */
      connectMs: number
      /** Milliseconds from starting to connect to the end of the greeting. */
      bannerMs: number
      lines: string[]
    }
  | {
      reachable: false
      address: string
      port: number
      reason: ProbeFailure
      message: string
      /** The TCP connection was accepted (a timeout then means: port open, no greeting). */
      connected: boolean
      connectMs?: number
      lines: string[]
    }

const MAX_GREETING_BYTES = 64 * 1024

/**
 * Connect, read the greeting up to `* OK MUPDATE` or `* BYE` (no login), say `X LOGOUT`, close.
 * Never throws for network trouble: refused, timeout, reset and garbage come back as
 * `reachable: false` with a reason.
 */
/** A stream to the MUPDATE port opened another way than plain TCP (an SSH tunnel to the host). */
export type OpenStream = () => Promise<Duplex>

export function probeMupdate(address: string, port = 3905, timeoutMs = 5000, open?: OpenStream): Promise<MupdateProbeResult> {
  return new Promise((resolve) => {
    const started = performance.now()
    const reader = createBannerReader({host: address})
    const lines = reader.lines
    let connectMs: number | undefined
    let settled = false
    let buffered = ''
    let bytes = 0
    // Through a tunnel the stream arrives later; until then `socket` is a stand-in that is never connected.
    let socket: Duplex = open ? new PassThrough() : net.createConnection({host: address, port})

    const finish = (result: MupdateProbeResult, logout: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(result)
      if (logout && !socket.destroyed) {
        // Be polite: a server that sees LOGOUT logs a clean disconnect, not a reset.
        socket.on('error', () => {})
        socket.end('X LOGOUT\r\n')
        setTimeout(() => socket.destroy(), 250).unref()
      } else socket.destroy()
    }
    const fail = (reason: ProbeFailure, message: string): void =>
      finish(
        {reachable: false, address, port, reason, message, connected: connectMs !== undefined, ...(connectMs !== undefined ? {connectMs} : {}), lines},
        false,
      )
    /** Feed one complete line (latin1-decoded bytes); true once the greeting is over. */
    const feed = (latin1Line: string): boolean => {
      let scan: BannerScan
      try {
        scan = reader.push(Buffer.from(latin1Line, 'latin1').toString('utf8'))
      } catch (err) {
        fail('protocol', err instanceof Error ? err.message : String(err))
        return true
      }
      if (!scan.done) return false
      finish({reachable: true, address, port, banner: scan.banner, connectMs: connectMs ?? 0, bannerMs: performance.now() - started, lines}, true)
      return true
    }

    const timer = setTimeout(() => {
      fail(
        'timeout',
        connectMs === undefined
          ? `no TCP connection to ${address}:${port} within ${timeoutMs} ms`
          : `${address}:${port} accepted the connection but sent no MUPDATE greeting within ${timeoutMs} ms (a slave that has not synchronised with its master yet, or a hung mupdate)`,
      )
    }, timeoutMs)

    const listen = (sock: Duplex) => {
      sock.setEncoding('latin1')
      sock.on('connect', () => {
        connectMs = performance.now() - started
      })
      sock.on('data', (chunk: string) => {
        if (settled) return
        bytes += chunk.length
        buffered += chunk
        let nl: number
        while ((nl = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, nl + 1)
          buffered = buffered.slice(nl + 1)
          if (feed(line)) return
        }
        if (bytes > MAX_GREETING_BYTES) fail('protocol', `more than ${MAX_GREETING_BYTES} bytes without a MUPDATE greeting`)
      })
      sock.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? (/refused/i.test(err.message) ? 'ECONNREFUSED' : '')
        if (code === 'ECONNREFUSED') fail('refused', `connection to ${address}:${port} refused (nothing listening)`)
        else if (['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
          fail('unreachable', `${address}:${port}: ${err.message}`)
        } else if (code === 'ECONNRESET' && connectMs !== undefined) fail('closed', `${address}:${port} reset the connection before its greeting`)
        else if (code === 'ETIMEDOUT') fail('timeout', `${address}:${port}: ${err.message}`)
        else fail('error', `${address}:${port}: ${err.message}`)
      })
      sock.on('close', () => {
        if (settled) return
        // A last line without its newline (e.g. a BYE and an immediate close) still counts.
        if (buffered !== '' && feed(buffered)) return
        fail('closed', `${address}:${port} closed the connection before finishing its greeting`)
      })
    }
    if (!open) {
      ;(socket as net.Socket).setNoDelay(true)
      listen(socket)
      return
    }
    const openFailed = (err: Error) =>
      /refused/i.test(err.message)
        ? fail('refused', `connection to ${address}:${port} refused (nothing listening)`)
        : fail('error', `${address}:${port} through SSH: ${err.message}`)
    open().then((sock) => {
      connectMs = performance.now() - started
      socket = sock
      if (settled) sock.destroy()
      else listen(sock)
    }, openFailed)
  })
}
