// The lab's shape: which hosts exist, their roles, addresses and servernames.
import {z} from 'zod'
import type {Role} from '../inventory/schema.js'

export const LabTopology = z.enum(['standard', 'unified'])
export type LabTopology = z.infer<typeof LabTopology>

export interface LabHost {
  name: string
  role: Role
  address: string
  servername: string
  replicaOf?: string
}

/**
 * standard: mupdate master, two frontends, two backends, a replica of b1.
 * unified: mupdate master, two unified backends (each also a frontend), a replica of b1.
 * The replica shares b1's servername, as a replication pair must (seed 001).
 */
export function labHosts(topology: LabTopology, base: string): LabHost[] {
  const at = (n: number) => `${base}.${n}`
  const hosts: LabHost[] = [{name: 'mupdate', role: 'mupdate-master', address: at(10), servername: 'mupdate'}]
  if (topology === 'standard') {
    hosts.push({name: 'fe1', role: 'frontend', address: at(11), servername: 'fe1'}, {name: 'fe2', role: 'frontend', address: at(12), servername: 'fe2'})
  }
  hosts.push(
    {name: 'b1', role: 'backend', address: at(13), servername: 'b1'},
    {name: 'b2', role: 'backend', address: at(14), servername: 'b2'},
    {name: 'b1r', role: 'replica', address: at(15), servername: 'b1', replicaOf: 'b1'},
  )
  return hosts
}

export function validBase(base: string): boolean {
  const parts = base.split('.')
  return parts.length === 3 && parts[0] === '127' && parts.every((p) => /^\d+$/.test(p) && Number(p) <= 255)
}
