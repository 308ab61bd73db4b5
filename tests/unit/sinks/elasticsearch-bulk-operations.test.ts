// Bulk operations as data: _id and size of a `create`, cutting into ≤ 5 MB requests, classifying item results.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  backoffMs,
  chunksOf,
  type IndexItem,
  itemOutcome,
  operationOf,
} from '../../../sinks/elasticsearch-bulk-operations.ts'
import { correlation, revokeOutcomes, shellInContainer } from './ecs-sample-events.ts'

/** When the sink writes the documents: event.ingested. */
const ingestedAt = Date.UTC(2026, 0, 2, 3, 4, 5)

const event: IndexItem = { topic: 'events', value: shellInContainer }

describe('bulk operations', () => {
  it('create the item under its own id in its data stream, measured in bytes', () => {
    const op = operationOf(event, 3, 'prod', ingestedAt)
    expect(op).toMatchObject({ index: 3, stream: 'logs-nerve.events-prod', id: shellInContainer.id })
    expect(JSON.parse(op.action)).toEqual({
      create: { _index: 'logs-nerve.events-prod', _id: shellInContainer.id },
    })
    expect(JSON.parse(op.source)).toMatchObject({ event: { id: shellInContainer.id } })
    expect(op.bytes).toBe(Buffer.byteLength(`${op.action}\n${op.source}\n`))
  })

  it('hash an id longer than the 512 bytes Elasticsearch allows', () => {
    const id = 'x'.repeat(600)
    const op = operationOf({ topic: 'correlations', value: { ...correlation, id } }, 0, 'default', ingestedAt)
    expect(op.id).toBe(createHash('sha256').update(id).digest('hex'))
  })

  it('cut operations into requests of at most 5 MB, never leaving one out', () => {
    const big = { ...operationOf(event, 0, 'default', ingestedAt), bytes: 2_000_000 }
    const ops = [0, 1, 2, 3, 4].map((index) => ({ ...big, index }))
    expect([...chunksOf(ops)].map((c) => c.map((o) => o.index))).toEqual([[0, 1], [2, 3], [4]])
    const huge = { ...big, bytes: 9_000_000 }
    expect([...chunksOf([huge, big])].map((c) => c.length)).toEqual([1, 1])
  })

  it('classify item results: 2xx created, 409 duplicate, 429/5xx retry, other 4xx failed', () => {
    const op = operationOf(
      { topic: 'revoke_outcomes', value: revokeOutcomes[0] as (typeof revokeOutcomes)[0] },
      0,
      'default',
      ingestedAt,
    )
    const results = [200, 201, 409, 429, 500, 503, 400, 404].map((status) => itemOutcome(op, status).result)
    expect(results).toEqual([
      'created',
      'created',
      'duplicate',
      'retry',
      'retry',
      'retry',
      'failed',
      'failed',
    ])
    const failed = itemOutcome(op, 400, {
      type: 'document_parsing_exception',
      reason: '[1:2] failed to parse',
    })
    expect(failed).toMatchObject({
      result: 'failed',
      error: {
        code: 'SINK_REJECTED',
        retriable: false,
        details: {
          status: 400,
          type: 'document_parsing_exception',
          data_stream: 'logs-nerve.revokes-default',
        },
      },
    })
  })

  it('back off exponentially with jitter, capped at 30 s', () => {
    expect([0, 1, 2, 3].map((n) => backoffMs(n, () => 0))).toEqual([125, 250, 500, 1000])
    expect(backoffMs(3, () => 1)).toBe(2000)
    expect(backoffMs(20, () => 1)).toBe(30_000)
    expect(backoffMs(20, () => 0)).toBe(15_000)
  })
})
