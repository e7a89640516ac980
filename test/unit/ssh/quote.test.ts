// Quoting: the exact forms, and round trips through real shells (sh is dash here, and bash).
import {execFileSync} from 'node:child_process'
import {randomInt} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {BugError} from '../../../src/errors.js'
import {commandLine, shellQuote} from '../../../src/ssh/quote.js'

/** What a shell makes of a command line `printf '%s\0' <words>`: the words it passed. */
function wordsThroughShell(shell: string, words: string): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${words}`], {encoding: 'utf8'})
  return out.split('\0').slice(0, -1)
}

const NASTY = [
  "it's",
  "''",
  '$(touch /tmp/murderctl-pwned)',
  '`id`',
  '${HOME}',
  '$HOME',
  'a b\tc',
  '',
  ' ',
  '"double"',
  '\\',
  'back\\slash\\n',
  'new\nline',
  'trailing newline\n',
  'ünïcødé ✓',
  ';|&<>()',
  '*',
  '?',
  '[a-z]',
  '~',
  '~root',
  '{a,b}',
  '#comment',
  '!history',
  'FOO=bar',
  '=cmd',
  '-n',
  '--',
  'user.alice@example.com',
  'mixed \'single\' and "double" and $ and `',
]

describe('shellQuote', () => {
  it('leaves plain safe words bare', () => {
    for (const w of ['user.alice', '/usr/lib/cyrus/bin/ctl_mboxlist', '-mw', '--config=/etc/imapd.conf', 'a,b', 'user@example.com', '50%', 'x+y:z', 'A_b-9'])
      expect(shellQuote(w)).toBe(w)
  })

  it('single-quotes everything else, a quote becoming ' + "'\\''", () => {
    expect(shellQuote('')).toBe("''")
    expect(shellQuote('a b')).toBe("'a b'")
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
    expect(shellQuote('$HOME')).toBe("'$HOME'")
    expect(shellQuote('~root')).toBe("'~root'")
    expect(shellQuote('{a,b}')).toBe("'{a,b}'")
    expect(shellQuote('#x')).toBe("'#x'")
    // An assignment-looking first word would set a variable instead of running a program.
    expect(shellQuote('FOO=bar')).toBe("'FOO=bar'")
    expect(shellQuote('=ls')).toBe("'=ls'")
  })

  for (const shell of ['sh', 'bash']) {
    it(`round-trips nasty arguments through a real ${shell} -c`, () => {
      expect(wordsThroughShell(shell, NASTY.map(shellQuote).join(' '))).toEqual(NASTY)
      expect(wordsThroughShell(shell, commandLine(NASTY))).toEqual(NASTY)
    })
  }

  it('round-trips 300 random strings of every byte but NUL through sh', () => {
    const alphabet = Array.from({length: 127}, (_, i) => String.fromCharCode(i + 1)).join('') + 'äß✓'
    const args = Array.from({length: 300}, () => Array.from({length: randomInt(0, 12)}, () => alphabet[randomInt(alphabet.length)]).join(''))
    expect(wordsThroughShell('sh', commandLine(args))).toEqual(args)
  })

  it('runs an assignment-looking word as a program, not as an assignment', () => {
    // Quoted, `FOO=bar` is looked up as a command (exit 127), not silently accepted.
    let status = 0
    try {
      execFileSync('sh', ['-c', commandLine(['FOO=bar', 'true'])], {stdio: 'ignore'})
    } catch (error) {
      status = (error as {status: number}).status
    }
    expect(status).toBe(127)
  })
})

describe('commandLine', () => {
  it('quotes argv word by word and passes a shell line through untouched', () => {
    expect(commandLine(['/usr/lib/cyrus/bin/ctl_mboxlist', '-d', '-f', '/var/lib/cyrus/mailboxes.db'])).toBe(
      '/usr/lib/cyrus/bin/ctl_mboxlist -d -f /var/lib/cyrus/mailboxes.db',
    )
    expect(commandLine(['echo', "a'b", 'c d'])).toBe(`echo 'a'\\''b' 'c d'`)
    expect(commandLine({shell: 'a | b && c > /dev/null'})).toBe('a | b && c > /dev/null')
  })

  it('refuses an empty command (a bug in the caller)', () => {
    expect(() => commandLine([])).toThrow(BugError)
    expect(() => commandLine({shell: '  '})).toThrow(BugError)
  })
})
