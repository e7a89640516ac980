// Dumps for the tests of the awk programs that read `ctl_mboxlist -d` on a host
// (mboxlist-count.test.ts, mboxlist-local-only.test.ts): captured ones and awkward made ones.
import {execFileSync} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {join} from 'node:path'

// Debian's default is mawk; gawk is what many hosts have instead. Test every one installed.
export const AWKS = ['mawk', 'gawk', 'busybox awk', 'awk'].filter((a) => {
  try {
    execFileSync('sh', ['-c', `command -v ${a.split(' ')[0]}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
})

/** jansson's layout (", " and ": "), as ctl_mboxlist prints it. */
export const j = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(j).join(', ')}]`
    : v && typeof v === 'object'
      ? `{${Object.entries(v)
          .map(([k, x]) => `${JSON.stringify(k)}: ${j(x)}`)
          .join(', ')}}`
      : JSON.stringify(v)

/** An entry in dump_cb's key order; `extra` keys go where dump_cb puts them. */
export function cyrusLine(e: {
  name: string
  mbtype: string
  partition?: string
  server?: string
  acl?: Record<string, string>
  uniqueid?: string
  special?: string
  history?: object[]
}) {
  const o: Record<string, unknown> = {name: e.name, mtime: '1795345473', uidvalidity: '1700000001', createdmodseq: '1', foldermodseq: '2', mbtype: e.mbtype}
  if (e.partition !== undefined) o.partition = e.partition
  if (e.server !== undefined) o.server = e.server
  o.acl = e.acl ?? {}
  if (e.uniqueid !== undefined) o.uniqueid = e.uniqueid
  if (e.special !== undefined) o.legacy_specialuse = e.special
  o.name_history = e.history ?? []
  return `${JSON.stringify(e.name)}: ${j(o)}`
}
export const dump = (lines: string[]) => `{\n${lines.join(',\n')}\n}\n`

export const part = 'default'
export const tricky = [
  cyrusLine({name: 'user.alice', mbtype: 'e', partition: part, acl: {alice: 'lrswipkxtecdan'}, uniqueid: 'u1'}),
  cyrusLine({name: 'user.bob.Say "hi"', mbtype: 'e', partition: part, acl: {bob: 'lrs'}, uniqueid: 'u2'}),
  cyrusLine({name: 'user.bob.back\\slash\ttab\\', mbtype: 'e', partition: part, uniqueid: 'u3'}),
  cyrusLine({name: 'user.bob.Ünïcødé 日本 😀', mbtype: 'e', partition: part, uniqueid: 'u4'}),
  // Key-like text inside names and ACLs must not be read as the entry's own keys.
  cyrusLine({name: 'user.x", "mbtype": "er", "server": "b9', mbtype: 'e', partition: part}),
  cyrusLine({name: 'user.y}, "uniqueid": "z', mbtype: 'e', partition: part, acl: {'a}': 'lrs'}}),
  cyrusLine({
    name: 'user.acl',
    mbtype: 'e',
    partition: part,
    acl: {server: 'lrs', uniqueid: 'lrs', mbtype: 'er', partition: 'x', name_history: 'l', 'q"}, "uniqueid": "': 'l', '{': 'l'},
  }),
  cyrusLine({name: 'user.acl2', mbtype: 'e', partition: part, acl: {server: 'lrs'}, uniqueid: ''}),
  // Remote by flag, by server, both; an empty server is not remote.
  cyrusLine({name: 'user.r1', mbtype: 'er', partition: part, server: 'b2', acl: {r1: 'lrs'}}),
  cyrusLine({name: 'user.r2', mbtype: 'er', partition: part}),
  cyrusLine({name: 'user.r3', mbtype: 'e', partition: part, server: 'b2', uniqueid: 'u5'}),
  cyrusLine({name: 'user.r4', mbtype: 'e', partition: part, server: '', uniqueid: 'u6'}),
  cyrusLine({name: 'user.r5', mbtype: 'e', partition: part, server: '"', uniqueid: 'u6'}),
  // Tombstones (3.6 leaves "ed" without a partition), intermediates, other types and flags.
  cyrusLine({name: 'user.alice.Old', mbtype: 'ed'}),
  cyrusLine({name: 'DELETED.user.erin.5F0', mbtype: 'ed', partition: part, uniqueid: 'u7'}),
  cyrusLine({name: 'user.frank.a', mbtype: 'ei', partition: part}),
  cyrusLine({name: 'user.frank.b', mbtype: 'eri', partition: part, server: 'b1'}),
  cyrusLine({name: 'user.cal.#calendars', mbtype: 'c', partition: part, uniqueid: 'u8'}),
  cyrusLine({name: 'user.cal.#addressbooks', mbtype: 'am', partition: part, uniqueid: 'u9'}),
  cyrusLine({name: 'user.res', mbtype: 'ez', partition: part}),
  cyrusLine({name: 'user.dr', mbtype: 'erd', partition: part, server: 'b2'}),
  cyrusLine({name: 'user.sp', mbtype: 'e', partition: part, uniqueid: 'u10', special: '\\Sent'}),
  // name_history items carry their own mbtype and partition.
  cyrusLine({
    name: 'user.moved',
    mbtype: 'e',
    partition: 'p2',
    acl: {m: 'lrs'},
    history: [
      {name: 'user.old', mtime: '1', uidvalidity: '2', createdmodseq: '1', foldermodseq: '1', mbtype: 'er', partition: 'p1'},
      {name: 'user.older}, "uniqueid": "x', mbtype: 'ed', partition: 'p0'},
    ],
  }),
  // Written with \u escapes, as another JSON library might.
  String.raw`"user.\u00e9\ud83d\ude00": {"name": "user.\u00e9\ud83d\ude00", "mtime": "1", "uidvalidity": "1", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "e", "partition": "default", "acl": {"\u0041": "lrs"}, "uniqueid": "\u0075", "name_history": []}`,
  String.raw`"user.srv": {"name": "user.srv", "mtime": "1", "uidvalidity": "1", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "e", "partition": "default", "server": "\"", "acl": {}, "name_history": []}`,
]
// Not dump_cb's layout: the awk hands these back to the parser.
export const unusual = [
  '"user.order": {"mbtype": "er", "name": "user.order", "partition": "default", "server": "b2", "acl": {}}',
  '"user.nested": {"name": "user.nested", "mbtype": "e", "partition": "default", "extra": {"server": "b3", "uniqueid": "x"}, "acl": {}}',
  '"user.nums": {"name": "user.nums", "uidvalidity": 5, "mtime": 7, "mbtype": "e", "partition": "default", "acl": {"a": "l"}, "uniqueid": "u"}',
  '"user.noname": {"mbtype": "e", "partition": "default", "acl": {}, "uniqueid": "u"}',
  '"user.key": {"name": "user.other", "mbtype": "er", "partition": "default", "acl": {}}',
  '"user.esc": {"name": "user.esc", "mtime": "1", "uidvalidity": "1", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "\\u0065", "partition": "default", "acl": {}, "uniqueid": "u", "name_history": []}',
  '"user.spaced" :  {"name": "user.spaced", "mbtype": "e", "partition": "default", "acl": {}}',
]

export const fixtures = [
  ...readdirSync(join(import.meta.dirname, '../../fixtures/cyrus'))
    .filter((f) => f.startsWith('dump-'))
    .map((f) => join(import.meta.dirname, '../../fixtures/cyrus', f)),
  ...readdirSync(join(import.meta.dirname, '../../fixtures/lab'))
    .filter((f) => f.startsWith('dump-'))
    .map((f) => join(import.meta.dirname, '../../fixtures/lab', f)),
]
