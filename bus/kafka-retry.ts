// Retry is a classification (STYLE.md 6): kafkajs marks each error `retriable`; we keep its decision and wrap
// it as BUS_UNAVAILABLE. The backoff is kafkajs's own shape: capped, exponential, jittered.
import { NerveError } from '../runtime/errors.ts'
import type { RetryPolicy } from './kafka-config.ts'

type MaybeKafkaError = Error & { retriable?: unknown; cause?: unknown }

/** The innermost cause kafkajs wrapped (KafkaJSNumberOfRetriesExceeded keeps the error that kept failing). */
function originalCause(err: MaybeKafkaError): MaybeKafkaError {
  let current = err
  for (let depth = 0; depth < 8 && current.cause instanceof Error; depth++) current = current.cause
  return current
}

/** True when waiting and trying again may succeed (broker down, leader moving, timeout). */
export function isRetriableKafkaError(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const e = err as MaybeKafkaError
  if (e.name === 'KafkaJSNumberOfRetriesExceeded') return originalCause(e).retriable === true
  return e.retriable === true
}

/** Any error met talking to Kafka, as the NerveError stages branch on. */
export function busError(err: unknown, doing: string): NerveError {
  if (err instanceof NerveError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new NerveError('BUS_UNAVAILABLE', `Kafka ${doing} failed: ${message}`, {
    retriable: isRetriableKafkaError(err),
    cause: err,
  })
}

/** Delay before attempt `attempt + 1` (0-based): min(max, initial·multiplier^attempt), jittered by ±factor, capped. */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const base = Math.min(policy.maxRetryTime, policy.initialRetryTime * policy.multiplier ** attempt)
  const jitter = base * policy.factor * (2 * random() - 1)
  return Math.max(0, Math.min(policy.maxRetryTime, Math.round(base + jitter)))
}
