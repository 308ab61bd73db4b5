// Puts decoded events on the bus keyed by agent id, and rejected items on the dead-letter topic with
// their reason and original bytes. Resolves only once both are durable; never accepts what cannot be:
// beyond `maxPending` publishes in flight it refuses at once (SATURATED → 429 + Retry-After), and a bus
// failure becomes BUS_UNAVAILABLE (503 + Retry-After) unless the bus already said why.
// A large body's records go to the bus in parts of `partRecords`, the event loop given back between parts:
// one publish serializes its records and the bus writes it in one transaction, which for a 4 MB body of
// 4,000 alerts held the loop for tens of milliseconds. Every part must be durable before the request is
// answered 202; when one fails the request fails as before (503/507, retriable) and no further part is
// started. The parts already durable stay on the bus: the sender, told to retry, sends them again and the
// duplicates are dropped downstream by event id (as for a spooled request whose publish completes late).
// The credential links a request taught (an STS call's) must be on disk too before it is answered: its
// publish also waits for `linksDurable` (one fdatasync of the links file shared by the requests in flight),
// alongside the bus's; a request that taught none waits for nothing more.
import type { Bus, BusRecord, Topic } from '../bus/bus.ts'
import { type DeadLetter, deadLetterTopic, eventsTopic } from '../bus/topics.ts'
import { isNerveError, NerveError } from '../runtime/errors.ts'
import type { Metrics } from '../runtime/metrics.ts'
import { nextTurn } from '../runtime/next-turn.ts'
import type { NormalizedEvent } from '../schemas/types.ts'
import type { Decoded } from './decode-events.ts'
import { eventRecordJson } from './event-record-json.ts'

export type DecodedPublisher = {
  /** Throws SATURATED when `maxPending` publishes are in flight: checked before a request is decoded. */
  checkCapacity(): void
  publish(component: string, decoded: Decoded, receivedAt: number): Promise<void>
  pending(): number
  /** Resolves when nothing is in flight. */
  drain(): Promise<void>
}

/**
 * Records per bus publish: about 150 KB of Falco events' JSON, a millisecond or two of serializing on a quiet
 * machine. Parts of 125 (about 300 KB) were 10-16 ms tasks under load (healthz bench, CPU profile).
 */
export const partRecords = 64

export function createDecodedPublisher(
  config: { maxPending: number },
  deps: {
    bus: Bus
    metrics: Metrics
    onPublished?: (events: readonly NormalizedEvent[]) => void
    /** Resolves once the credential links learned so far are durable (identity-links-file.ts). */
    linksDurable?: () => Promise<void>
    /** Links learned but not on disk yet (a failed append): a request issuing credentials waits for them too. */
    linksOwed?: () => boolean
  },
): DecodedPublisher {
  let inFlight = 0
  const idle: (() => void)[] = []
  deps.metrics.gauge(
    'nerve_ingest_pending_publishes',
    'Ingest requests waiting for the bus.',
    [],
    () => inFlight,
  )

  const checkCapacity = () => {
    if (inFlight >= config.maxPending) {
      throw new NerveError('SATURATED', 'The bus is not keeping up; retry shortly.', { retriable: true })
    }
  }

  /** One publish for up to partRecords records; otherwise parts, each started on a turn of its own. */
  const publishInParts = async <T>(topic: Topic<T>, records: BusRecord<T>[]): Promise<void> => {
    if (records.length <= partRecords) return deps.bus.publish(topic, records)
    const parts: Promise<void>[] = []
    let failed = false
    for (let i = 0; i < records.length && !failed; i += partRecords) {
      if (i > 0) await nextTurn()
      if (failed) break
      const part = deps.bus.publish(topic, records.slice(i, i + partRecords))
      part.catch(() => {
        failed = true
      })
      parts.push(part)
    }
    // Every part settled before the request is answered, so none is still in flight behind an error.
    const failure = (await Promise.allSettled(parts)).find((r) => r.status === 'rejected')
    if (failure) throw failure.reason
  }

  // Made once, not per publish: a closure bound to a name is given its `name` each time it is made (tsx).
  const publishDeadLetters = (component: string, decoded: Decoded, receivedAt: number) =>
    publishInParts(
      deadLetterTopic,
      decoded.invalid.map((item) => ({ key: component, value: deadLetter(component, item, receivedAt) })),
    )

  const publish = async (component: string, decoded: Decoded, receivedAt: number) => {
    if (decoded.events.length === 0 && decoded.invalid.length === 0) return
    checkCapacity()
    inFlight++
    try {
      const events =
        decoded.events.length > 0 ? publishInParts(eventsTopic, eventRecords(decoded)) : undefined
      // Were a dead letter durable beside a failed part of the events, the retry would put it on the bus
      // again (the rejected store keeps it once: its id leaves received_at out). Events in one publish go
      // in the same group commit as the dead letters (kept or rejected together); events in parts go first.
      const deadLetters =
        decoded.invalid.length === 0
          ? undefined
          : events && decoded.events.length > partRecords
            ? events.then(() => publishDeadLetters(component, decoded, receivedAt))
            : publishDeadLetters(component, decoded, receivedAt)
      // A retried request teaches its links no more (the resolver holds them): while some are owed, a request
      // issuing credentials waits for them to be appended and synced, as its first attempt did.
      const teaches =
        decoded.links ||
        (deps.linksOwed?.() && decoded.events.some((event) => event.core?.credentials !== undefined))
      const links = teaches && deps.linksDurable ? deps.linksDurable() : undefined
      // All in flight at once; the common request has only events, and then nothing more is built. Every
      // part settles before the answer (a failed links sync must not answer 503 while parts are still being
      // published, under the sender's retry and past drain()); the first failure is then thrown.
      if (deadLetters || links) {
        const failure = (await Promise.allSettled([events, deadLetters, links])).find(
          (r) => r.status === 'rejected',
        )
        if (failure) throw failure.reason
      } else await events
      if (events) deps.onPublished?.(decoded.events)
    } catch (err) {
      if (isNerveError(err)) throw err
      throw new NerveError('BUS_UNAVAILABLE', 'The bus could not take the events; retry shortly.', {
        retriable: true,
        cause: err,
      })
    } finally {
      inFlight--
      if (inFlight === 0) for (const resolve of idle.splice(0)) resolve()
    }
  }

  return {
    checkCapacity,
    publish,
    pending: () => inFlight,
    drain: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idle.push(resolve))),
  }
}

/** The events keyed by agent, each with its JSON text when its raw text can be written as is. */
function eventRecords(decoded: Decoded): BusRecord<NormalizedEvent>[] {
  const texts = decoded.rawTexts
  return decoded.events.map((event, i) => {
    const record = texts === undefined ? undefined : eventRecordJson(event, texts[i])
    return record === undefined
      ? { key: event.agent.id, value: event }
      : { key: event.agent.id, value: event, text: record.text, rawSpan: record.rawSpan }
  })
}

function deadLetter(component: string, item: Decoded['invalid'][number], receivedAt: number): DeadLetter {
  return {
    component,
    error_code: 'INPUT_INVALID',
    reason: item.problems.map((p) => `${p.path} ${p.message}`).join('; '),
    problems: item.problems,
    index: item.index,
    received_at: receivedAt,
    original: item.original,
    original_encoding: 'utf8',
  }
}
