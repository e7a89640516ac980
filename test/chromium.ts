// Real headless Chromium (Debian's package), offline: for tests that look at rendered pages.
import {existsSync, mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))

// No network, no first-run or background traffic, a fresh profile each time.
const BASE = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

async function chromium(args: string[], url: string): Promise<string> {
  if (!CHROMIUM) throw new Error('chromium is not installed: apt-get install -y chromium')
  const profile = mkdtempSync(join(tmpdir(), 'murderctl-chromium-'))
  try {
    const r = await execa(CHROMIUM, [...BASE, `--user-data-dir=${profile}`, ...args, url], {timeout: 90_000, reject: false})
    if (r.exitCode !== 0) throw new Error(`chromium exited ${r.exitCode}: ${r.stderr.slice(-2000)}`)
    return r.stdout
  } finally {
    rmSync(profile, {recursive: true, force: true})
  }
}

/** A PNG screenshot of a local file; returns its size in bytes. */
export async function screenshot(file: string, png: string, size = '1200,2000'): Promise<number> {
  await chromium([`--screenshot=${png}`, `--window-size=${size}`], `file://${file}`)
  return statSync(png).size
}

/** The DOM after the page ran (scripts included), as Chromium serializes it. */
export async function dumpDom(file: string, extra: string[] = []): Promise<string> {
  return chromium(['--dump-dom', ...extra], `file://${file}`)
}
