// What the lab needs from this machine, and installing it when we are root.
import {existsSync} from 'node:fs'
import {execa} from 'execa'
import {AbortError} from '../errors.js'

/** Files the lab runs, and the Debian package that ships each. */
const NEEDS: [file: string, pkg: string][] = [
  ['/usr/lib/cyrus/bin/master', 'cyrus-imapd'],
  ['/usr/lib/cyrus/bin/mupdate', 'cyrus-murder'],
  ['/usr/lib/cyrus/bin/sync_client', 'cyrus-replication'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['/usr/bin/ssh-keygen', 'openssh-client'],
  ['/usr/sbin/saslpasswd2', 'sasl2-bin'],
  ['/usr/sbin/rsyslogd', 'rsyslog'],
  ['/usr/bin/unshare', 'util-linux'],
  ['/usr/bin/nsenter', 'util-linux'],
]

export function missingPackages(): string[] {
  return [...new Set(NEEDS.filter(([f]) => !existsSync(f)).map(([, p]) => p))]
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

/** Install what is missing from Debian's packages (root only); otherwise say what to install. */
export async function ensureSystemPackages(log: (msg: string) => void): Promise<void> {
  const missing = missingPackages()
  if (missing.length === 0) return
  const extra = ['cyrus-admin', 'cyrus-clients']
  const cmd = `apt-get install -y ${[...missing, ...extra].join(' ')}`
  if (!isRoot()) throw new AbortError(`the lab needs ${missing.join(', ')}`, {step: 'lab up', hint: `as root: apt-get update && ${cmd}`})
  log(`installing ${missing.join(', ')} from Debian's packages`)
  const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
  await execa('apt-get', ['update', '-qq'], {env})
  // Postinst scripts try to start services; policy-rc.d may refuse. That is harmless here.
  await execa('apt-get', ['install', '-y', '-qq', ...missing, ...extra], {env, reject: false}).then((r) => {
    const still = missingPackages()
    if (still.length) throw new AbortError(`installing ${still.join(', ')} failed: ${r.stderr.split('\n').slice(-3).join(' ')}`, {step: 'lab up'})
  })
}
