// Writes oclif.manifest.json after the build, so that a run imports only the command it runs
// (without a manifest oclif imports every command at every start-up).
import {writeFileSync} from 'node:fs'
import {Config} from '@oclif/core'

const config = await Config.load({root: process.cwd()})
const manifest = config.getPluginsList().find((p) => p.isRoot).manifest
writeFileSync('oclif.manifest.json', `${JSON.stringify(manifest, null, 2)}\n`)
console.log(`oclif.manifest.json: ${Object.keys(manifest.commands).length} commands`)
