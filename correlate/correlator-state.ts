// The correlator's state as data (JSON-serializable): what a checkpoint holds and a restart restores.
import type { Side } from '../schemas/types.ts'
import type { CoreDetail, EdgeDetail, Who } from './agent-windows.ts'
import type { IncidentRecord } from './group-incidents.ts'
import type { RevokeRecord } from './revoke-confirmations.ts'

export type SerializedEntry = {
  side: Side
  agent: string
  id: string
  time: number
  rules: string[]
  expiry: number
  seq: number
  lag: number
  who: Who
  detail: EdgeDetail | CoreDetail
  output?: string
}

/** The small part of the state: stream time, counters, incidents, revoke marks. */
export type CorrelatorMeta = {
  version: 1
  stream_time: number | null
  seq: number
  last_sweep: number | null
  incidents: IncidentRecord[]
  revoked: RevokeRecord[]
}

/** Everything a restart needs (T1, D1, S1): JSON-serializable. Entries are in buffer (seq) order. */
export type CorrelatorState = CorrelatorMeta & { entries: SerializedEntry[] }

/** What changed since the last takeChanges(): enough to keep a checkpoint up to date incrementally. */
export type CorrelatorChanges = { meta: CorrelatorMeta; added: SerializedEntry[]; removed: string[] }
