// One IMAP session on a host with the inventory's admin credentials, as the admin or (proxy
// authorization) as a mailbox's owner, so flags like \Seen land in the owner's state. Shared by
// replication repair and reconcile, which both re-append messages.
import {readFileSync} from 'node:fs'
import {RefusedError} from '../errors.js'
import type {Host, Inventory} from '../inventory/schema.js'
import {ImapClient} from './client.js'

function imapCredentials(inv: Inventory) {
  const imap = inv.imap
  if (!imap)
    throw new RefusedError('this command writes over IMAP and the inventory has no imap settings', {
      hint: 'add imap: {user: <admin in proxyservers>, passwordFile: FILE} to the inventory',
    })
  return {...imap, password: readFileSync(imap.passwordFile, 'utf8').split('\n')[0]}
}

export async function imapSession<T>(inv: Inventory, host: Host, asUser: string | null, fn: (c: ImapClient) => Promise<T>): Promise<T> {
  const cred = imapCredentials(inv)
  const c = await ImapClient.open(host.address, cred.port, {label: host.name})
  try {
    if (asUser && asUser !== cred.user) await c.authenticatePlain(asUser, cred.user, cred.password)
    else await c.login(cred.user, cred.password)
    return await fn(c)
  } finally {
    await c.logout()
  }
}
