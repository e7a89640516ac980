import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {AbortError} from '../../../src/errors.js'
import {
  disableService,
  enableService,
  findService,
  findServices,
  hasFlag,
  hasMupdatePush,
  mupdatePushEntry,
  mupdateService,
  parseCyrusConf,
  programOf,
  serializeCyrusConf,
  syncClientDaemon,
} from '../../../src/cyrus/cyrus-conf.js'

const debian = readFileSync(new URL('../../fixtures/debian/cyrus.conf', import.meta.url), 'utf8')
const debianImapd = readFileSync(new URL('../../fixtures/debian/imapd.conf', import.meta.url), 'utf8')

const roundTrip = (t: string): string => serializeCyrusConf(parseCyrusConf(t))

describe('parseCyrusConf round trip', () => {
  it("gives back Debian's cyrus.conf (and any other text) byte for byte", () => {
    expect(roundTrip(debian)).toBe(debian)
    expect(roundTrip(debianImapd)).toBe(debianImapd)
    expect(roundTrip(debian.replace(/\n/g, '\r\n'))).toBe(debian.replace(/\n/g, '\r\n'))
    for (const t of ['', '\n', '\r\n\r\n', 'no newline', 'SERVICES {\n', '}\n}\n{', '\r', 'a\rb\n', '\t \n# x\n', '\uFEFFSTART {\n}\n']) {
      expect(roundTrip(t)).toBe(t)
    }
  })

  it('round-trips random text', () => {
    let seed = 7
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const atoms = [
      'START',
      'SERVICES',
      'EVENTS',
      'DAEMON',
      ' {',
      '}',
      '{',
      '\n',
      '\r\n',
      '\r',
      '\t',
      ' ',
      '#',
      '"',
      '=',
      'imap',
      'cmd=',
      '"imapd -U 30"',
      'é',
      '日',
      'x_y',
      '  # disabled by murderctl',
    ]
    for (let i = 0; i < 500; i++) {
      let t = ''
      const n = rand(60)
      for (let j = 0; j < n; j++) t += atoms[rand(atoms.length)]
      expect(roundTrip(t)).toBe(t)
    }
  })
})

describe('parseCyrusConf structure', () => {
  const conf = parseCyrusConf(debian)

  it('finds the sections and their entries', () => {
    expect(conf.problems).toEqual([])
    expect(conf.sections.START.filter((e) => e.enabled).map((e) => e.name)).toEqual(['recover', 'delprune', 'tlsprune'])
    expect(conf.sections.SERVICES.filter((e) => e.enabled).map((e) => e.name)).toEqual(['imap', 'pop3', 'nntp', 'http', 'lmtpunix', 'sieve', 'notify'])
    expect(conf.sections.EVENTS.filter((e) => e.enabled).map((e) => e.name)).toEqual(['checkpoint', 'delprune', 'tlsprune', 'deleteprune', 'expungeprune'])
    expect(conf.sections.DAEMON).toEqual([])
  })

  it('reads entries like cyrus-master does', () => {
    const imap = findService(conf, 'SERVICES', 'imap')!
    expect(imap).toMatchObject({
      section: 'SERVICES',
      name: 'imap',
      cmd: 'imapd -U 30',
      args: {cmd: 'imapd -U 30', listen: 'imap', prefork: '0', maxchild: '100'},
      enabled: true,
      raw: '\timap\t\tcmd="imapd -U 30" listen="imap" prefork=0 maxchild=100',
    })
    expect(debian.split('\n')[imap.line - 1]).toBe(imap.raw)
    const notify = findService(conf, 'SERVICES', 'notify')!
    expect(notify.args['proto']).toBe('udp')
  })

  it('reports commented-out entries as disabled, not prose comments', () => {
    const disabled = conf.entries.filter((e) => !e.enabled).map((e) => `${e.section}/${e.name}`)
    expect(disabled).toEqual([
      'START/idled',
      'START/mupdatepush',
      'SERVICES/imaps',
      'SERVICES/pop3s',
      'SERVICES/nntps',
      'SERVICES/https',
      'SERVICES/lmtp',
      'SERVICES/mupdate',
      'SERVICES/mupdate',
      'SERVICES/imap',
      'SERVICES/imaps',
      'SERVICES/pop3',
      'SERVICES/pop3s',
      'SERVICES/lmtp',
    ])
    // `#squatter_1` has a name cyrus-master would refuse, so it is only a comment.
    expect(conf.lines.find((l) => l.text.includes('squatter_1'))!.kind).toBe('comment')
    expect(findServices(conf, 'SERVICES', 'mupdate').map((e) => e.cmd)).toEqual(['mupdate', 'mupdate -m'])
  })

  it('reports lines cyrus-master refuses', () => {
    const bad = parseCyrusConf('SERVICES {\n  squatter_1 cmd="squatter"\n  imap cmd="imapd\n  ok cmd="imapd"\n}\n')
    expect(bad.problems.map((p) => p.line)).toEqual([2, 3])
    expect(bad.lines.map((l) => l.kind)).toEqual(['section-open', 'invalid', 'invalid', 'entry', 'section-close'])
  })

  it('cuts at the first # like cyrus-master, even inside quotes', () => {
    const c = parseCyrusConf('DAEMON {\n  x cmd="a" wait=y # comment\n}\n')
    expect(c.sections.DAEMON[0]!.args).toEqual({cmd: 'a', wait: 'y'})
  })

  it('ignores entries outside known sections and in repeated sections', () => {
    const c = parseCyrusConf('FOO {\n  imap cmd="x"\n}\nSERVICES {\n  imap cmd="imapd"\n}\nservices {\n  pop3 cmd="pop3d"\n}\n')
    expect(c.entries.map((e) => e.name)).toEqual(['imap'])
    expect(roundTrip('FOO {\n  imap cmd="x"\n}\n')).toBe('FOO {\n  imap cmd="x"\n}\n')
  })
})

describe('disableService / enableService', () => {
  it('comments a line out and restores exactly the original text', () => {
    const off = disableService(debian, 'SERVICES', 'imap')
    const line = off.split('\n').find((l) => l.includes('disabled by murderctl'))
    expect(line).toBe('#\timap\t\tcmd="imapd -U 30" listen="imap" prefork=0 maxchild=100  # disabled by murderctl')
    expect(off.length).toBe(debian.length + 1 + '  # disabled by murderctl'.length)
    const conf = parseCyrusConf(off)
    expect(findServices(conf, 'SERVICES', 'imap').every((e) => !e.enabled)).toBe(true)
    expect(findService(conf, 'SERVICES', 'imap')!.disabledBy).toBe('murderctl')
    expect(disableService(off, 'SERVICES', 'imap')).toBe(off) // idempotent
    // Two commented imap lines now (ours and Debian's proxyd); ours is the one restored.
    expect(enableService(off, 'SERVICES', 'imap')).toBe(debian)
    expect(enableService(debian, 'SERVICES', 'imap')).toBe(debian) // idempotent
  })

  it('works on CRLF files and files without a final newline', () => {
    const crlf = 'SERVICES {\r\n  mupdate cmd="mupdate" listen=3905 prefork=1\r\n}'
    const off = disableService(crlf, 'SERVICES', 'mupdate')
    expect(off).toBe('SERVICES {\r\n#  mupdate cmd="mupdate" listen=3905 prefork=1  # disabled by murderctl\r\n}')
    expect(enableService(off, 'SERVICES', 'mupdate')).toBe(crlf)
  })

  it('keeps a trailing comment of the original line', () => {
    const t = 'SERVICES {\n  imap cmd="imapd" listen="imap" # main\n}\n'
    const off = disableService(t, 'SERVICES', 'imap')
    expect(findService(parseCyrusConf(off), 'SERVICES', 'imap')).toMatchObject({enabled: false, disabledBy: 'murderctl', args: {listen: 'imap'}})
    expect(enableService(off, 'SERVICES', 'imap')).toBe(t)
  })

  it('uses the marker it is given', () => {
    const off = disableService(debian, 'START', 'recover', 'dr-2024')
    expect(off).toContain('#\trecover\t\tcmd="/usr/sbin/cyrus ctl_cyrusdb -r"  # disabled by dr-2024\n')
    expect(() => enableService(off, 'START', 'recover')).not.toThrow() // single candidate
    expect(enableService(off, 'START', 'recover', {marker: 'dr-2024'})).toBe(debian)
    expect(() => disableService(debian, 'START', 'recover', 'bad marker')).toThrow(AbortError)
  })

  it('leaves absent services alone when disabling, and refuses to guess when enabling', () => {
    expect(disableService(debian, 'DAEMON', 'syncclient')).toBe(debian)
    expect(() => enableService(debian, 'DAEMON', 'syncclient')).toThrow(/no DAEMON entry named syncclient/)
    expect(() => enableService(debian, 'SERVICES', 'mupdate')).toThrow(/2 commented-out SERVICES entries named mupdate/)
  })

  it("enables Debian's mupdate master line when told which one", () => {
    const on = enableService(debian, 'SERVICES', 'mupdate', {match: (e) => e.cmd === 'mupdate -m'})
    expect(on).toBe(debian.replace('\t#mupdate       cmd="mupdate -m"', '\tmupdate       cmd="mupdate -m"'))
    expect(mupdateService(parseCyrusConf(on))).toMatchObject({mode: 'master', enabled: true})
  })
})

describe('queries', () => {
  it('mupdateService: mode and enabled state', () => {
    expect(mupdateService(parseCyrusConf(debian))).toMatchObject({mode: 'slave', enabled: false, entry: {cmd: 'mupdate'}})
    const master = 'SERVICES {\n  mupdate cmd="/usr/lib/cyrus/bin/mupdate -C /etc/imapd.conf -m" listen="127.0.0.10:3905" prefork=1\n}\n'
    expect(mupdateService(parseCyrusConf(master))).toMatchObject({mode: 'master', enabled: true})
    const slave = 'SERVICES {\n  mupdate cmd="mupdate" listen="3905" prefork=1\n}\n'
    expect(mupdateService(parseCyrusConf(slave))).toMatchObject({mode: 'slave', enabled: true})
    const off = disableService(slave, 'SERVICES', 'mupdate')
    expect(mupdateService(parseCyrusConf(off))).toMatchObject({mode: 'slave', enabled: false, entry: {disabledBy: 'murderctl'}})
    expect(mupdateService(parseCyrusConf('SERVICES {\n  m cmd="mupdate -a"\n}\n'))!.mode).toBe('auto')
    expect(mupdateService(parseCyrusConf('SERVICES {\n  imap cmd="imapd"\n}\n'))).toBeUndefined()
  })

  it('hasMupdatePush: START entries running ctl_mboxlist -m, through the Debian wrapper too', () => {
    const conf = parseCyrusConf(debian)
    expect(hasMupdatePush(conf)).toBe(false)
    expect(mupdatePushEntry(conf)).toMatchObject({name: 'mupdatepush', enabled: false})
    const on = enableService(debian, 'START', 'mupdatepush')
    expect(hasMupdatePush(parseCyrusConf(on))).toBe(true)
    expect(hasMupdatePush(parseCyrusConf('START {\n  push cmd="ctl_mboxlist -C /etc/imapd.conf -m"\n}\n'))).toBe(true)
    expect(hasMupdatePush(parseCyrusConf('START {\n  push cmd="cyrus mboxlist -ma"\n}\n'))).toBe(true)
    expect(hasMupdatePush(parseCyrusConf('START {\n  dump cmd="ctl_mboxlist -d -f /tmp/m"\n}\n'))).toBe(false)
  })

  it('syncClientDaemon: DAEMON or START sync_client -r', () => {
    expect(syncClientDaemon(parseCyrusConf(debian))).toBeUndefined()
    const d = 'DAEMON {\n  syncclient cmd="sync_client -r"\n}\n'
    expect(syncClientDaemon(parseCyrusConf(d))).toMatchObject({section: 'DAEMON', name: 'syncclient', enabled: true})
    const s = 'START {\n  syncclient cmd="/usr/sbin/cyrus sync_client -n replica -r"\n}\n'
    expect(syncClientDaemon(parseCyrusConf(s))).toMatchObject({section: 'START', enabled: true})
    expect(syncClientDaemon(parseCyrusConf('START {\n  one cmd="sync_client -u alice"\n}\n'))).toBeUndefined()
    expect(syncClientDaemon(parseCyrusConf(disableService(d, 'DAEMON', 'syncclient')))).toMatchObject({enabled: false})
  })

  it('programOf and hasFlag', () => {
    expect(programOf('/usr/sbin/cyrus ctl_mboxlist -m')).toEqual({program: 'ctl_mboxlist', args: ['-m']})
    expect(programOf('imapd -U 30')).toEqual({program: 'imapd', args: ['-U', '30']})
    expect(programOf('   ')).toBeUndefined()
    expect(hasFlag(['-mw'], 'w')).toBe(true)
    expect(hasFlag(['-C', '-m'], 'm', 'C')).toBe(false) // -m is -C's argument
    expect(hasFlag(['-Cm'], 'm', 'C')).toBe(false)
    expect(hasFlag(['--', '-m'], 'm')).toBe(false)
  })
})
