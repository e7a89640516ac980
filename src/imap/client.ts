// A small IMAP4rev1 client: enough to seed the lab, read UID/GUID maps and re-append messages.
// Commands are sent one at a time; responses are read until the tagged completion.
import {connect, type Socket} from 'node:net'
import {AbortError, UnreachableError} from '../errors.js'

export interface ImapResponse {
  /** Untagged lines, with any literals inlined as {literal: Buffer} parts joined as text. */
  untagged: string[]
  /** Literal bodies in order of arrival. */
  literals: Buffer[]
  status: 'OK' | 'NO' | 'BAD'
  text: string
}

/** Quote a string as an IMAP quoted string, or use a literal when it cannot be quoted. */
export function imapString(s: string): string {
  if (/[\r\n\0]/.test(s) || Buffer.byteLength(s) !== s.length) return `{${Buffer.byteLength(s)}+}\r\n${s}`
  return `"${s.replace(/(["\\])/g, '\\$1')}"`
}

export class ImapClient {
  private buf = Buffer.alloc(0)
  private waiters: (() => void)[] = []
  private closed: Error | null = null
  private tagSeq = 0
  readonly greeting: Promise<string>

  private constructor(
    private readonly sock: Socket,
    readonly label: string,
  ) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d])
      this.wake()
    })
    sock.on('close', () => {
      this.closed ??= new Error('connection closed')
      this.wake()
    })
    sock.on('error', (e) => {
      this.closed = e
      this.wake()
    })
    this.greeting = this.readLine()
  }

  static async open(address: string, port = 143, opts: {timeoutMs?: number; label?: string} = {}): Promise<ImapClient> {
    const label = opts.label ?? address
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({host: address, port})
      const t = setTimeout(() => {
        s.destroy()
        reject(new UnreachableError(`IMAP connect to ${address}:${port} timed out`, {host: label}))
      }, opts.timeoutMs ?? 10_000)
      s.once('connect', () => {
        clearTimeout(t)
        resolve(s)
      })
      s.once('error', (e) => {
        clearTimeout(t)
        reject(new UnreachableError(`IMAP connect to ${address}:${port} failed: ${e.message}`, {host: label}))
      })
    })
    sock.setTimeout(opts.timeoutMs ?? 60_000, () => sock.destroy(new Error('IMAP timeout')))
    // A command goes out in several writes (tag, literal, CRLF): without this, Nagle's algorithm
    // meets the server's delayed ACK and every command waits ~40 ms.
    sock.setNoDelay(true)
    const c = new ImapClient(sock, label)
    const g = await c.greeting
    if (!g.startsWith('* OK')) throw new AbortError(`unexpected IMAP greeting: ${g}`, {host: label})
    return c
  }

  private wake() {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private async waitData(): Promise<void> {
    if (this.closed) throw new AbortError(`IMAP: ${this.closed.message}`, {host: this.label})
    await new Promise<void>((r) => this.waiters.push(r))
  }

  private async readLine(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n')
      if (i >= 0) {
        const line = this.buf.subarray(0, i).toString('utf8')
        this.buf = this.buf.subarray(i + 2)
        return line
      }
      await this.waitData()
    }
  }

  private async readBytes(n: number): Promise<Buffer> {
    while (this.buf.length < n) await this.waitData()
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return Buffer.from(out)
  }

  /** Send one command (with optional synchronizing literals) and collect its response. */
  async command(cmd: string, literals: Buffer[] = []): Promise<ImapResponse> {
    const tag = `m${++this.tagSeq}`
    const parts = cmd.split('\x00LIT\x00')
    if (parts.length !== literals.length + 1) throw new Error('literal placeholders do not match')
    this.sock.write(`${tag} ${parts[0]}`)
    for (let i = 0; i < literals.length; i++) {
      this.sock.write(`{${literals[i].length}}\r\n`)
      const cont = await this.readLine()
      if (!cont.startsWith('+')) return {untagged: [], literals: [], status: 'NO', text: cont}
      this.sock.write(literals[i])
      this.sock.write(parts[i + 1])
    }
    this.sock.write('\r\n')
    const untagged: string[] = []
    const lits: Buffer[] = []
    for (;;) {
      let line = await this.readLine()
      // A line ending in {n} is followed by n bytes of literal, then the rest of the line.
      let m = /\{(\d+)\}$/.exec(line)
      while (m) {
        lits.push(await this.readBytes(Number(m[1])))
        const rest = await this.readLine()
        line = `${line}${rest}`
        m = /\{(\d+)\}$/.exec(rest)
      }
      if (line.startsWith(`${tag} `)) {
        const [, status, text] = /^\S+ (OK|NO|BAD) ?(.*)$/.exec(line) ?? [null, 'BAD', line]
        return {untagged, literals: lits, status: status as ImapResponse['status'], text}
      }
      untagged.push(line)
    }
  }

  /** Like command(), but a NO or BAD becomes an error naming the command. */
  async ok(cmd: string, literals: Buffer[] = []): Promise<ImapResponse> {
    const r = await this.command(cmd, literals)
    if (r.status !== 'OK') throw new AbortError(`IMAP ${cmd.split(' ')[0]} failed: ${r.status} ${r.text}`, {host: this.label})
    return r
  }

  async login(user: string, password: string): Promise<void> {
    await this.ok(`LOGIN ${imapString(user)} ${imapString(password)}`)
  }

  /**
   * SASL PLAIN with an initial response (RFC 4959): authenticate as `authcid` and act as
   * `authzid` (a mailbox's owner, so its \Seen lands in the owner's state). Cyrus allows it
   * when authcid is in `proxyservers` or an admin.
   */
  async authenticatePlain(authzid: string, authcid: string, password: string): Promise<void> {
    const ir = Buffer.from(`${authzid}\0${authcid}\0${password}`).toString('base64')
    const r = await this.command(`AUTHENTICATE PLAIN ${ir}`)
    if (r.status !== 'OK') throw new AbortError(`IMAP AUTHENTICATE as ${authzid} failed: ${r.status} ${r.text}`, {host: this.label})
  }

  async append(mailbox: string, message: Buffer, opts: {flags?: string[]; internalDate?: string} = {}): Promise<ImapResponse> {
    const flags = opts.flags?.length ? ` (${opts.flags.join(' ')})` : ''
    const date = opts.internalDate ? ` "${opts.internalDate}"` : ''
    return this.ok(`APPEND ${imapString(mailbox)}${flags}${date} \x00LIT\x00`, [message])
  }

  async logout(): Promise<void> {
    try {
      if (!this.closed) await this.command('LOGOUT')
    } catch {
      // the server may close first; that is a logout too
    } finally {
      this.sock.destroy()
    }
  }
}
