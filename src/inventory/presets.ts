// Where each distribution's cyrus-imapd package puts what murderctl touches: the admin tools
// (ctl_mboxlist, cvt_cyrusdb, sync_client, mbexamine, mbpath, cyr_info), the two config files,
// cyrus-master's pid file, the service, the Cyrus user and group, and the syslog file Cyrus logs
// to. `cyrus.preset` picks one; a cyrus setting of the inventory still wins over it.
//
// debian: the cyrus-common package of Debian 12 (Cyrus 3.6), as installed on the lab machine:
//   tools in /usr/lib/cyrus/bin, service cyrus-imapd, LOCAL6 logged by rsyslog to /var/log/syslog.
// rhel, fedora: the cyrus-imapd RPM, checked against its spec file (RHEL 9's, cyrus-imapd 3.4.8,
//   as rebuilt by OpenELA: SPECS/cyrus-imapd.spec, SOURCES/cyrus-imapd.service and
//   patch-cyrus-default-configs); Fedora's spec is the same file but for build dependencies:
//   - `%files`: ctl_mboxlist, cvt_cyrusdb, sync_client, mbexamine, mbpath, cyr_info in %{_sbindir}
//     (/usr/sbin); the daemons in %{_libexecdir}/cyrus-imapd (cyrus-master, renamed from master);
//   - /etc/imapd.conf and /etc/cyrus.conf; configdirectory /var/lib/imap (murderctl reads that
//     from imapd.conf, never from here);
//   - cyrus-imapd.service runs cyrus-master without -p: Cyrus's own pid file, /run/cyrus-master.pid;
//   - user cyrus, group mail (%define cyrususer/cyrusgroup);
//   - built --with-syslogfacility=MAIL: rsyslog's default puts mail.* in /var/log/maillog.
import {z} from 'zod'

export const presetNames = ['debian', 'rhel', 'fedora'] as const
export const Preset = z.enum(presetNames)
export type Preset = z.infer<typeof Preset>

export interface PresetSettings {
  binDir: string
  imapdConf: string
  cyrusConf: string
  pidFile: string
  stop: string
  start: string
  user: string
  group: string
  syslogFile: string
}

// Debian and Red Hat agree but for where the tools are and where mail logs go.
const debian: PresetSettings = {
  binDir: '/usr/lib/cyrus/bin',
  imapdConf: '/etc/imapd.conf',
  cyrusConf: '/etc/cyrus.conf',
  pidFile: '/run/cyrus-master.pid',
  stop: 'systemctl stop cyrus-imapd',
  start: 'systemctl start cyrus-imapd',
  user: 'cyrus',
  group: 'mail',
  syslogFile: '/var/log/syslog',
}
const redHat: PresetSettings = {...debian, binDir: '/usr/sbin', syslogFile: '/var/log/maillog'}

export const PRESETS: Record<Preset, PresetSettings> = {
  debian,
  rhel: redHat,
  fedora: redHat,
}
