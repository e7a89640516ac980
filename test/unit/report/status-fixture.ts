// `murderctl status --json` of the standard lab, and the same murder with things gone wrong.
import type {Inventory} from '../../../src/inventory/schema.js'
import type {MurderStatus} from '../../../src/services/status.js'

/** The inventory facts the diagram needs (pairs), as the lab's inventory has them. */
export function inventoryOf(s: MurderStatus): Pick<Inventory, 'hosts'> {
  return {
    hosts: s.hosts.map(
      (h) =>
        ({
          name: h.name,
          role: h.role,
          address: h.address,
          servername: h.role === 'replica' ? 'b1' : h.name,
          replicaOf: h.role === 'replica' ? 'b1' : undefined,
        }) as Inventory['hosts'][number],
    ),
  }
}

/** fe1's slave disconnected, b2 unreachable, the replica started in the murder too, sync_client stopped. */
export function degraded(s: MurderStatus): MurderStatus {
  const c = structuredClone(s)
  const h = (n: string) => c.hosts.find((x) => x.name === n)!
  Object.assign(h('fe1').mupdate, {slaveConnected: false})
  h('fe1').notes.push('the mupdate slave is not connected to the master')
  Object.assign(h('b2'), {reachable: false, error: 'host b2: connection refused', cyrusMaster: {running: false, pid: null}, mailboxes: null})
  Object.assign(h('b1r'), {mupdateServer: 'mupdate'})
  h('b1').replication.rollingClient = 'stopped'
  return c
}
