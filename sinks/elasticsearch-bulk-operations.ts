// Bulk operations as data: an item becomes a `create` action with a deterministic _id and its ECS document,
// operations are cut into requests of at most 5 MB, and each bulk item result is classified (created,
// duplicate, retry, failed). Pure; elasticsearch-indexer.ts does the I/O.
import { createHash } from 'node:crypto'
import { type ErrorCode, NerveError } from '../runtime/errors.ts'
import type { Correlation, NormalizedEvent, RevokeOutcome } from '../schemas/types.ts'
import { buildCorrelationDocument } from './ecs-correlation-document.ts'
import { buildEventDocument } from './ecs-event-document.ts'
import { buildRevokeDocument } from './ecs-revoke-document.ts'
import { dataStreamOf } from './elasticsearch-data-streams.ts'

export type IndexItem =
  | { topic: 'events'; value: NormalizedEvent }
  | { topic: 'correlations'; value: Correlation }
  | { topic: 'revoke_outcomes'; value: RevokeOutcome }

/** Requests are cut at this many bytes of NDJSON (the es-js bulk helper's flushBytes). */
const maxRequestBytes = 5_000_000
const backoffBaseMs = 250
const backoffMaxMs = 30_000
/** Elasticsearch's limit for _id. */
const maxIdBytes = 512

export type Operation = {
  index: number
  stream: string
  id: string
  action: string
  source: string
  bytes: number
}
export type Outcome =
  | { result: 'created' | 'duplicate' }
  /** `status`: the item's own (429, 5xx); none when the whole request failed or the item had no result. */
  | { result: 'retry'; reason: string; status?: number }
  | FailedOutcome
export type FailedOutcome = { result: 'failed'; error: NerveError }
export const resultLabels: Record<Outcome['result'], string> = {
  created: 'created',
  duplicate: 'duplicate',
  retry: 'retried',
  failed: 'rejected',
}
/** The bulk response, as filtered by filter_path. */
export type BulkItems = {
  items?: Record<string, { status: number; error?: { type?: string; reason?: string } }>[]
}

/** One bulk `create` of an item, serialized once (its size decides the request it goes in). */
/** `ingestedAt`: the sink's clock when the request is built, the document's event.ingested. */
export function operationOf(
  item: IndexItem,
  index: number,
  namespace: string,
  ingestedAt: number,
): Operation {
  const { id, doc } = documentOf(item, namespace, ingestedAt)
  const stream = dataStreamOf(doc)
  const _id = Buffer.byteLength(id) > maxIdBytes ? createHash('sha256').update(id).digest('hex') : id
  const action = JSON.stringify({ create: { _index: stream, _id } })
  const source = JSON.stringify(doc)
  const bytes = Buffer.byteLength(action) + Buffer.byteLength(source) + 2
  return { index, stream, id: _id, action, source, bytes }
}

function documentOf(
  item: IndexItem,
  namespace: string,
  at: number,
): { id: string; doc: Record<string, unknown> } {
  switch (item.topic) {
    case 'events':
      return { id: item.value.id, doc: buildEventDocument(item.value, namespace, at) }
    case 'correlations':
      return { id: item.value.id, doc: buildCorrelationDocument(item.value, namespace, at) }
    case 'revoke_outcomes':
      return { id: item.value.id, doc: buildRevokeDocument(item.value, namespace, at) }
  }
}

export function itemOutcome(
  op: Operation,
  status: number,
  error?: { type?: string; reason?: string },
): Outcome {
  if (status === 200 || status === 201) return { result: 'created' }
  if (status === 409) return { result: 'duplicate' }
  const reason = error?.type ? `${error.type}: ${error.reason ?? ''}`.trim() : `HTTP ${status}`
  if (status === 429 || status >= 500) return { result: 'retry', reason, status }
  return failedOutcome(
    'SINK_REJECTED',
    `Elasticsearch rejected ${op.id} in ${op.stream} (HTTP ${status}): ${reason}`,
    {
      status,
      type: error?.type,
      reason: error?.reason,
      data_stream: op.stream,
    },
  )
}

/** Elasticsearch's error type (`mapper_parsing_exception`), safe to log: its reason may quote the value. */
export const errorTypeOf = (error: NerveError | undefined): string | undefined =>
  (error?.details as { type?: string } | undefined)?.type

export const failedOutcome = (code: ErrorCode, message: string, details?: unknown): FailedOutcome => ({
  result: 'failed',
  error: new NerveError(code, message, { retriable: false, details }),
})

/** Equal jitter: half the capped exponential step, plus a random share of the other half. */
export function backoffMs(retry: number, random: () => number): number {
  const ceiling = Math.min(backoffMaxMs, backoffBaseMs * 2 ** retry)
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

export function* chunksOf(ops: readonly Operation[]): Generator<Operation[]> {
  let chunk: Operation[] = []
  let bytes = 0
  for (const op of ops) {
    if (chunk.length > 0 && bytes + op.bytes > maxRequestBytes) {
      yield chunk
      chunk = []
      bytes = 0
    }
    chunk.push(op)
    bytes += op.bytes
  }
  if (chunk.length > 0) yield chunk
}
