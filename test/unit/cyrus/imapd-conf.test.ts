import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {UnexpectedOutputError} from '../../../src/errors.js'
import {
  imapdBool,
  lintImapdConf,
  murderRole,
  parseImapdConf,
  parseMupdateServer,
  removeImapdOption,
  setImapdOption,
  undoImapdOption,
} from '../../../src/cyrus/imapd-conf.js'

const debian = readFileSync(new URL('../../fixtures/debian/imapd.conf', import.meta.url), 'utf8')

describe('parseImapdConf', () => {
  it("reads Debian's shipped imapd.conf", () => {
    const conf = parseImapdConf(debian)
    expect(conf.get('configdirectory')).toBe('/var/lib/cyrus')
    expect(conf.get('partition-default')).toBe('/var/spool/cyrus/mail')
    expect(conf.get('syslog_prefix')).toBe('cyrus')
    expect(conf.get('httpmodules')).toBe('caldav carddav')
    expect(conf.has('admins')).toBe(false) // commented out in the shipped file
    expect(conf.size).toBe(27)
    expect(lintImapdConf(debian)).toEqual([])
  })

  it('follows Cyrus rules: case, whitespace, comments, continuations', () => {
    const text = [
      '# comment: not a key',
      '   ServerName:   b1.example  ',
      '\tadmins:\tcyrus murder',
      'sasl_mech_list: PLAIN # not a comment in imapd.conf',
      'long_value: one \\',
      'two',
      '',
      '  # indented comment',
      'partition-default: /var/spool/cyrus/mail',
    ].join('\n')
    const conf = parseImapdConf(text)
    expect([...conf.entries()]).toEqual([
      ['servername', 'b1.example'],
      ['admins', 'cyrus murder'],
      ['sasl_mech_list', 'PLAIN # not a comment in imapd.conf'],
      ['long_value', 'one two'],
      ['partition-default', '/var/spool/cyrus/mail'],
    ])
  })

  it('handles CRLF files', () => {
    expect([...parseImapdConf('a: 1\r\nb: two words\r\n').entries()]).toEqual([
      ['a', '1'],
      ['b', 'two words'],
    ])
  })

  it('refuses what Cyrus refuses, with the line number', () => {
    expect(() => parseImapdConf('a: 1\nmupdate_port: 1\nMUPDATE_PORT: 2\n')).toThrow(UnexpectedOutputError)
    expect(() => parseImapdConf('a: 1\nmupdate_port: 1\nMUPDATE_PORT: 2\n')).toThrow(/mupdate_port.*lines 2 and 3/)
    expect(() => parseImapdConf('bad key: 1\n')).toThrow(/invalid option name on line 1/)
    expect(() => parseImapdConf('x:   \n')).toThrow(/empty option value on line 1/)
    expect(parseImapdConf('a: 1\na: 2\n', {lenient: true}).get('a')).toBe('1')
    expect(lintImapdConf('@include: /etc/other.conf\n')).toMatchObject([{kind: 'include', fatal: false}])
  })
})

describe('setImapdOption', () => {
  const base = 'servername: b1\n# murder\nmupdate_server: mm.example\nmupdate_authname: murder\n'

  it('replaces a value in place and keeps every other byte', () => {
    expect(setImapdOption(base, 'mupdate_server', 'mm2.example')).toBe(base.replace('mm.example', 'mm2.example'))
    const odd = '  MUPDATE_Server:\tmm.example   \nx: y'
    expect(setImapdOption(odd, 'mupdate_server', 'new')).toBe('  MUPDATE_Server:\tnew\nx: y')
  })

  it('is a no-op when the value is already set', () => {
    expect(setImapdOption(base, 'mupdate_server', 'mm.example')).toBe(base)
    expect(setImapdOption(base, 'not_there', null)).toBe(base)
  })

  it('comments a key out and back in, giving back the original text', () => {
    const off = setImapdOption(base, 'mupdate_server', null)
    expect(off).toBe('servername: b1\n# murder\n#mupdate_server: mm.example  # murderctl\nmupdate_authname: murder\n')
    expect(parseImapdConf(off).has('mupdate_server')).toBe(false)
    expect(setImapdOption(off, 'mupdate_server', null)).toBe(off)
    expect(setImapdOption(off, 'mupdate_server', 'mm.example')).toBe(base)
  })

  it("uncomments Debian's commented default instead of appending", () => {
    const out = setImapdOption(debian, 'admins', 'cyrus murder')
    expect(out.split('\n').length).toBe(debian.split('\n').length)
    expect(out).toContain('\nadmins: cyrus murder\n')
    expect(out).not.toContain('\n#admins: cyrus\n')
    expect(parseImapdConf(out).get('admins')).toBe('cyrus murder')
  })

  it('prefers the line murderctl commented out over other commented lines', () => {
    const text = '#mupdate_server: old.example\nservername: b1\n#mupdate_server: mm.example  # murderctl\n'
    expect(setImapdOption(text, 'mupdate_server', 'mm.example')).toBe('#mupdate_server: old.example\nservername: b1\nmupdate_server: mm.example\n')
  })

  it("appends with the file's line ending, adding one if the file lacks a final newline", () => {
    expect(setImapdOption('a: 1\n', 'mupdate_retry_delay', '2')).toBe('a: 1\nmupdate_retry_delay: 2\n')
    expect(setImapdOption('a: 1', 'b', '2')).toBe('a: 1\nb: 2\n')
    expect(setImapdOption('a: 1\r\nc: 3\r\n', 'b', '2')).toBe('a: 1\r\nc: 3\r\nb: 2\r\n')
    expect(setImapdOption('', 'b', '2')).toBe('b: 2\n')
  })

  it('keeps CRLF on the edited line', () => {
    expect(setImapdOption('a: 1\r\nb: 2\r\n', 'a', '9')).toBe('a: 9\r\nb: 2\r\n')
    expect(setImapdOption('a: 1\r\nb: 2\r\n', 'a', null)).toBe('#a: 1  # murderctl\r\nb: 2\r\n')
  })

  it('repairs an existing duplicate instead of keeping it', () => {
    const dup = 'mupdate_port: 3905\nservername: b1\nMupdate_Port: 3906\n'
    const out = setImapdOption(dup, 'mupdate_port', '3907')
    expect(out).toBe('mupdate_port: 3907\nservername: b1\n#Mupdate_Port: 3906  # murderctl\n')
    expect(lintImapdConf(out)).toEqual([])
  })

  it('collapses a continued line it rewrites', () => {
    expect(setImapdOption('a: one \\\ntwo\nb: 2\n', 'a', 'three')).toBe('a: three\nb: 2\n')
  })

  it('never produces a key twice, whatever the sequence of edits', () => {
    let seed = 42
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const keys = ['mupdate_server', 'MUPDATE_SERVER', 'admins', 'sync_log', 'proxyservers']
    let text = debian
    const expected = new Map(parseImapdConf(debian))
    for (let i = 0; i < 400; i++) {
      const key = keys[rand(keys.length)]!
      const value = rand(3) === 0 ? null : `v${rand(5)}`
      text = setImapdOption(text, key, value)
      if (value === null) expected.delete(key.toLowerCase())
      else expected.set(key.toLowerCase(), value)
      expect(lintImapdConf(text).filter((p) => p.fatal)).toEqual([])
      expect(new Map(parseImapdConf(text))).toEqual(expected)
    }
    // Everything untouched is still there, byte for byte.
    const touched = /^\s*#?\s*(mupdate_server|admins|sync_log|proxyservers)\s*:/i
    expect(text.split('\n').filter((l) => !touched.test(l))).toEqual(debian.split('\n').filter((l) => !touched.test(l)))
  })

  it('rejects keys and values Cyrus could not read', () => {
    expect(() => setImapdOption(base, 'bad key', 'x')).toThrow(/not an imapd.conf key/)
    expect(() => setImapdOption(base, 'a', '   ')).toThrow(/bad value/)
    expect(() => setImapdOption(base, 'a', 'x\ny: z')).toThrow(/bad value/)
  })
})

describe("a temporary key (the master's list on tmpfs): removeImapdOption, undoImapdOption", () => {
  const KEY = 'mboxlist_db_path'
  const TMP = '/run/murderctl-tmpfs-20261128T193000Z-recover-master-ab12/mailboxes.db'
  const conf = 'configdirectory: /var/lib/cyrus\r\n#mboxlist_db_path: /srv/old.db\r\nservername: m\r\n'

  it('removes every active line of a key, continuations included, and nothing else', () => {
    const text = 'a: 1\nmboxlist_db_path: /x\\\n/y\n# mboxlist_db_path: kept\nb: 2'
    expect(removeImapdOption(text, KEY)).toBe('a: 1\n# mboxlist_db_path: kept\nb: 2')
    expect(removeImapdOption('a: 1\n', KEY)).toBe('a: 1\n')
  })

  it('gives back the original bytes when nothing else changed', () => {
    for (const original of [conf, 'a: 1', 'mboxlist_db_path: /srv/cyrus/mailboxes.db\nb: 2\n', '']) {
      const edited = setImapdOption(original, KEY, TMP)
      expect(parseImapdConf(edited).get(KEY)).toBe(TMP)
      expect(undoImapdOption(edited, original, KEY, TMP)).toBe(original)
    }
  })

  it('takes only the key back when the file was edited in between', () => {
    const edited = `${setImapdOption('a: 1\n', KEY, TMP)}added: yes\n`
    expect(undoImapdOption(edited, 'a: 1\n', KEY, TMP)).toBe('a: 1\nadded: yes\n')
    const custom = 'mboxlist_db_path: /srv/m.db\nb: 2\n'
    const editedCustom = setImapdOption(custom, KEY, TMP).replace('b: 2', 'b: 3')
    const back = undoImapdOption(editedCustom, custom, KEY, TMP)
    expect(back).toBe('mboxlist_db_path: /srv/m.db\nb: 3\n')
    expect(lintImapdConf(back).filter((p) => p.fatal)).toEqual([])
  })
})

describe('imapdBool', () => {
  it('uses Cyrus switch rules', () => {
    for (const v of ['1', 'yes', 'on', 'true', 't', 'y']) expect(imapdBool(v)).toBe(true)
    for (const v of ['0', 'no', 'off', 'false', 'f', 'n']) expect(imapdBool(v, true)).toBe(false)
    expect(imapdBool(undefined)).toBe(false)
    expect(imapdBool(undefined, true)).toBe(true)
    expect(imapdBool('maybe', true)).toBe(true)
    expect(imapdBool('Yes')).toBe(false) // Cyrus compares case-sensitively
  })
})

describe('murderRole', () => {
  const role = (o: Record<string, string>) => murderRole(new Map(Object.entries(o))).role
  it('classifies from imapd.conf', () => {
    expect(role({})).toBe('standalone')
    expect(role({mupdate_server: 'mm'})).toBe('frontend')
    expect(role({mupdate_server: 'mm', mupdate_config: 'standard', proxyservers: 'murder'})).toBe('backend')
    expect(role({mupdate_server: 'mm', mupdate_config: 'unified'})).toBe('unified')
    expect(role({mupdate_server: 'mm', mupdate_config: 'replicated'})).toBe('replicated')
    expect(role({mupdate_server: 'mm', mupdate_config: 'weird'})).toBe('unknown')
    expect(
      murderRole(
        new Map([
          ['mupdate_server', 'mm'],
          ['proxyservers', 'a b'],
        ]),
      ),
    ).toEqual({
      role: 'backend',
      mupdateServer: 'mm',
      mupdateConfig: 'standard',
      proxyservers: ['a', 'b'],
    })
  })

  it('parses mupdate_server', () => {
    expect(parseMupdateServer('mm.example')).toEqual({host: 'mm.example', tls: false, noauth: false})
    expect(parseMupdateServer('127.0.0.10:3905/tls')).toEqual({host: '127.0.0.10', port: 3905, tls: true, noauth: false})
    expect(parseMupdateServer('[::1]:4000/noauth')).toEqual({host: '::1', port: 4000, tls: false, noauth: true})
  })
})
