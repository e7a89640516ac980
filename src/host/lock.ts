// Where murderctl's run lock lives on a host: a directory (mkdir is atomic) in configdirectory.
import type {Host} from '../inventory/schema.js'
import type {MurderContext} from './context.js'
import {dbInfo} from './db.js'

export const lockDir = async (ctx: MurderContext, host: Host) => `${(await dbInfo(ctx, host)).configDirectory}/murderctl-recovery.lock`
