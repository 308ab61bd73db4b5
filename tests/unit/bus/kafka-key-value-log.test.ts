import { describe, expect, it } from 'vitest'
import { createKeyValueTable, type LogEnd, type LogRecord } from '../../../bus/kafka-key-value-log.ts'

function setup(ends: LogEnd[], opts: { timeoutMs?: number } = {}) {
  let clock = 0
  const writes: [string, string | null][] = []
  const table = createKeyValueTable<{ agent: string }>({
    name: 'links',
    write: async (records) => {
      for (const { key, value } of records) writes.push([key, value])
    },
    ends: async () => ends,
    now: () => clock,
    catchUpTimeoutMs: opts.timeoutMs ?? 60_000,
  })
  const advance = (ms: number) => {
    clock += ms
  }
  return { table, writes, advance }
}

const record = (partition: number, offset: number, key: string, value: unknown): LogRecord => ({
  key,
  value: value === null ? null : Buffer.from(JSON.stringify(value)),
  partition,
  offset,
})

describe('key-value table over a compacted topic', () => {
  it('answers from the latest record of each key, a tombstone deleting it', async () => {
    const { table } = setup([{ partition: 0, low: 0, high: 3 }])
    table.apply([record(0, 0, 'AKIA1', { agent: 'a' }), record(0, 1, 'AKIA1', { agent: 'b' })])
    table.apply([record(0, 2, 'AKIA2', null)])
    expect(await table.get('AKIA1')).toEqual({ agent: 'b' })
    expect(await table.get('AKIA2')).toBeUndefined()
  })

  it('waits until the reader reached the end the topic had when asked', async () => {
    const { table } = setup([
      { partition: 0, low: 0, high: 1 },
      { partition: 1, low: 0, high: 2 },
    ])
    table.apply([record(0, 0, 'k0', { agent: 'zero' })])
    let answered: unknown = 'pending'
    const asking = table.get('k1').then((v) => {
      answered = v
    })
    await new Promise((r) => setImmediate(r))
    expect(answered).toBe('pending')
    table.apply([record(1, 0, 'k1', { agent: 'old' }), record(1, 1, 'k1', { agent: 'new' })])
    await asking
    expect(answered).toEqual({ agent: 'new' })
  })

  it('counts an empty or fully compacted partition as read', async () => {
    const { table } = setup([
      { partition: 0, low: 0, high: 0 },
      { partition: 1, low: 7, high: 7 },
    ])
    expect(await table.get('nothing')).toBeUndefined()
  })

  it('gives up with a retriable BUS_UNAVAILABLE when the reader does not get there in time', async () => {
    const { table, advance } = setup([{ partition: 0, low: 0, high: 5 }], { timeoutMs: 1_000 })
    const asking = table.get('k')
    await new Promise((r) => setImmediate(r))
    advance(1_001)
    await expect(asking).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true })
  })

  it('writes several keys in one send, and scans the latest values under a prefix once caught up', async () => {
    const { table, writes } = setup([{ partition: 0, low: 0, high: 3 }])
    let sends = 0
    const counting = createKeyValueTable<{ agent: string }>({
      name: 'state',
      write: async (records) => {
        sends++
        for (const { key, value } of records) writes.push([key, value])
      },
      ends: async () => [],
      now: () => 0,
      catchUpTimeoutMs: 1_000,
    })
    await counting.putMany([
      ['p/3/delta/1', { agent: 'a' }],
      ['p/3/delta/0', undefined],
    ])
    expect(sends).toBe(1)
    expect(writes).toEqual([
      ['p/3/delta/1', '{"agent":"a"}'],
      ['p/3/delta/0', null],
    ])
    const scanning = table.scan('p/3/')
    table.apply([
      record(0, 0, 'p/3/delta/1', { agent: 'a' }),
      record(0, 1, 'p/30/delta/1', { agent: 'other partition' }),
      record(0, 2, 'p/3/delta/2', { agent: 'b' }),
    ])
    expect(await scanning).toEqual(
      new Map([
        ['p/3/delta/1', { agent: 'a' }],
        ['p/3/delta/2', { agent: 'b' }],
      ]),
    )
  })

  it('writes JSON, and a tombstone for undefined', async () => {
    const { table, writes } = setup([])
    await table.put('k', { agent: 'a' })
    await table.put('k', undefined)
    expect(writes).toEqual([
      ['k', '{"agent":"a"}'],
      ['k', null],
    ])
  })
})
