// How a mailbox's internal name (as Cyrus tools print it) looks to its owner over IMAP, and
// IMAP's date-time text: what a re-append as the owner needs.

const truthy = (v: string | undefined) => /^(1|yes|on|true|t)$/i.test(v ?? '')

/** The owner and the owner's IMAP name of an internal mailbox name; null owner for shared mailboxes. */
export function ownerView(internal: string, imapdConf: Map<string, string>): {owner: string | null; name: string} {
  const sep = truthy(imapdConf.get('unixhierarchysep')) ? '/' : '.'
  const alt = truthy(imapdConf.get('altnamespace'))
  const bang = internal.indexOf('!')
  const domain = bang >= 0 ? internal.slice(0, bang) : ''
  const local = bang >= 0 ? internal.slice(bang + 1) : internal
  const parts = local.split(sep)
  if (parts[0] !== 'user' || parts.length < 2) return {owner: null, name: internal}
  const owner = domain ? `${parts[1]}@${domain}` : parts[1]
  const rest = parts.slice(2)
  if (!rest.length) return {owner, name: 'INBOX'}
  return {owner, name: alt ? rest.join(sep) : ['INBOX', ...rest].join(sep)}
}

/** IMAP INTERNALDATE text of unix seconds: "28-Nov-2026 16:27:42 +0000". */
export function imapDate(seconds: number): string {
  const d = new Date(seconds * 1000)
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]
  const p = (n: number) => String(n).padStart(2, '0')
  return `${p(d.getUTCDate())}-${mon}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
}
