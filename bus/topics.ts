// Every topic, once: who writes and who reads each is said here and nowhere else.
import type { Correlation, IdentityLink, NormalizedEvent, RevokeOutcome } from '../schemas/types.ts'
import type { Topic } from './bus.ts'

const topic = <T>(name: string): Topic<T> => ({ name })

/** An item that was rejected, with why, and its original bytes. Written by ingest, sinks. */
export type DeadLetter = {
  /** Where it was rejected: falco_receiver, cloudtrail_receiver, elasticsearch_indexer, … */
  component: string
  error_code: string
  reason: string
  /** Field-level problems, when validation found them. */
  problems?: { path: string; message: string }[]
  /** Position of the item in its request or file, when there was one. */
  index?: number
  received_at: number
  /** The original bytes, as UTF-8 text (base64 when not valid UTF-8). */
  original: string
  original_encoding: 'utf8' | 'base64'
}

/** An event that arrived after its window and grace had closed. Written by correlate. */
export type LateEvent = {
  /**
   * The event as the correlator read it: on the embedded bus the correlate thread reads a CloudTrail
   * event without its `raw` (embedded-segments.ts), so its `raw` is null there; the store keeps no `raw`.
   */
  event: NormalizedEvent
  /** Stream time when it arrived, epoch ms. */
  stream_time: number
  /** How far past the lateness bound it was, ms. */
  lag_ms: number
  reason: string
}

/**
 * Correlator checkpoints per input partition, as a changelog with snapshots (correlate/ owns the keys and
 * the values: key-value-checkpoint-store.ts); compacted. Correlate → correlate (on a rebalance).
 */
export const correlatorStateTopic = topic<unknown>('nerve.correlator-state.v1')
/** Normalized edge and core events, keyed by agent id. Ingest → correlate, sinks. */
export const eventsTopic = topic<NormalizedEvent>('nerve.events.v1')
/** Correlations, keyed by agent id. Correlate → sinks. */
export const correlationsTopic = topic<Correlation>('nerve.correlations.v1')

/**
 * What the revoke dispatcher decides a correlation on (sinks/revoke-policy.ts); it reads the rest only
 * for a revoke it sends. Published beside each correlation (BusRecord.head), so that a correlation from the
 * correlate thread need not be parsed on the main thread for the many it suppresses.
 */
export type CorrelationHead = {
  id: string
  score: number
  rule: Pick<Correlation['rule'], 'revoke'>
  agent: Pick<Correlation['agent'], 'id' | 'resolved_by'>
  incident: Pick<Correlation['incident'], 'id' | 'merged'>
}

/** A correlation's head, from the correlation itself (never from its text: it holds the agent's strings). */
export function correlationHead(c: Correlation): CorrelationHead {
  const { merged } = c.incident
  return {
    id: c.id,
    score: c.score,
    rule: { revoke: c.rule.revoke },
    agent: { id: c.agent.id, resolved_by: c.agent.resolved_by },
    incident: merged === undefined ? { id: c.incident.id } : { id: c.incident.id, merged },
  }
}
/** Rejected input and undeliverable sink items. Ingest, sinks → operators. */
export const deadLetterTopic = topic<DeadLetter>('nerve.dead-letter.v1')
/** Events that missed their window. Correlate → operators. */
export const lateEventsTopic = topic<LateEvent>('nerve.late-events.v1')
/** Revoke decisions and delivery outcomes, keyed by agent id. Sinks (revoke dispatcher) → sinks (store, Elasticsearch). */
export const revokeOutcomesTopic = topic<RevokeOutcome>('nerve.revoke-outcomes.v1')
/** Credential links learned by ingest, keyed by access key id. Ingest → every ingest instance. */
export const identityLinksTopic = topic<IdentityLink>('nerve.identity-links.v1')
