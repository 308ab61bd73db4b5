// The correlator's state as data (JSON-serializable): what a checkpoint holds and a restart restores.
import type { Side } from '../schemas/types.ts'
import type { AgentBaselineRecord, BaselineChanges } from './agent-baseline.ts'
import type { CoreDetail, EdgeDetail, Who } from './entry-slots.ts'
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
  /** Identical alerts folded into this edge entry (absent when none). */
  repeats?: number
  /** The latest time among them, epoch ms (with repeats). */
  last_time?: number
}

/** The small part of the state, rewritten by every checkpoint: stream time and counters. */
export type CorrelatorMeta = {
  version: 1
  stream_time: number | null
  seq: number
  last_sweep: number | null
}

/**
 * Open incidents and revoke marks: they change only with correlations, revokes and sweeps, so a checkpoint
 * rewrites them only then: the incidents of the agents that changed, the revoke marks as a whole.
 */
export type CorrelatorLists = {
  incidents: IncidentRecord[]
  revoked: RevokeRecord[]
}

/** Everything a restart needs (T1, D1, S1): JSON-serializable. Entries are in buffer (seq) order. */
export type CorrelatorState = CorrelatorMeta &
  CorrelatorLists & {
    entries: SerializedEntry[]
    /** The behavioural baseline, one record per agent (absent when it is off or from older checkpoints). */
    baseline?: AgentBaselineRecord[]
  }

/** An agent's incidents after a change; none left when `incidents` is empty. */
export type AgentIncidents = { agent: string; incidents: IncidentRecord[] }

/**
 * What changed since the last takeChanges(): enough to keep a checkpoint up to date incrementally.
 * `incidents` lists only the agents whose incidents changed; `revoked` is there only when a mark changed.
 */
export type CorrelatorChanges = {
  meta: CorrelatorMeta
  incidents?: AgentIncidents[]
  revoked?: RevokeRecord[]
  added: SerializedEntry[]
  removed: string[]
  /** Agents whose baseline changed or was forgotten; absent when none did. */
  baseline?: BaselineChanges
}
