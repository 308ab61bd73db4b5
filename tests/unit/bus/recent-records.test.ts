import { describe, expect, it } from 'vitest'
import { createRecentRecords } from '../../../bus/recent-records.ts'

const event = (n: number) => ({ id: `evt-${n}`, agent: { id: 'data-cleaner' }, core: { resources: [{ n }] } })

describe('recent records', () => {
  it('hands out a batch only when every record of it is remembered, in offset order', () => {
    const recent = createRecentRecords(2, 100)
    for (let offset = 10; offset < 15; offset++)
      recent.add(1, offset, 'data-cleaner', event(offset), JSON.stringify(event(offset)))
    expect(recent.take(1, 10, 5)?.map((r) => [r.offset, r.partition, r.key])).toEqual([
      [10, 1, 'data-cleaner'],
      [11, 1, 'data-cleaner'],
      [12, 1, 'data-cleaner'],
      [13, 1, 'data-cleaner'],
      [14, 1, 'data-cleaner'],
    ])
    expect(recent.take(1, 12, 2)?.map((r) => r.value)).toEqual([event(12), event(13)])
    // Before the window, past it, or another partition: the consumer reads from disk.
    expect(recent.take(1, 9, 2)).toBeUndefined()
    expect(recent.take(1, 13, 3)).toBeUndefined()
    expect(recent.take(0, 10, 1)).toBeUndefined()
  })

  it('restarts the window after a gap and forgets what every group committed', () => {
    const recent = createRecentRecords(1, 100)
    recent.add(0, 0, 'k', event(0), JSON.stringify(event(0)))
    recent.add(0, 1, 'k', event(1), JSON.stringify(event(1)))
    recent.add(0, 5, 'k', event(5), JSON.stringify(event(5)))
    expect(recent.take(0, 0, 1)).toBeUndefined()
    expect(recent.take(0, 5, 1)?.[0]?.value).toEqual(event(5))
    recent.add(0, 6, 'k', event(6), JSON.stringify(event(6)))
    recent.forgetBelow(0, 6)
    expect(recent.take(0, 5, 1)).toBeUndefined()
    expect(recent.take(0, 6, 1)?.[0]?.value).toEqual(event(6))
  })

  it('hands a batch over as the JSON text of its values to a consumer that asks for it', () => {
    const recent = createRecentRecords(1, 10)
    for (let offset = 0; offset < 3; offset++)
      recent.add(0, offset, 'k', event(offset), JSON.stringify(event(offset)))
    expect(recent.take(0, 1, 2, true)?.map((r) => r.value)).toEqual([
      JSON.stringify(event(1)),
      JSON.stringify(event(2)),
    ])
    expect(recent.take(0, 1, 2)?.map((r) => r.value)).toEqual([event(1), event(2)])
  })

  it('keeps at most its cap per partition, forgetting the oldest', () => {
    const recent = createRecentRecords(1, 2_000)
    for (let offset = 0; offset < 2_500; offset++)
      recent.add(0, offset, 'k', event(offset), JSON.stringify(event(offset)))
    expect(recent.take(0, 0, 1)).toBeUndefined()
    expect(recent.take(0, 1_000, 1_500)).toHaveLength(1_500)
  })

  it('shares values that no handler can change for the others', () => {
    const recent = createRecentRecords(1, 10)
    recent.add(0, 0, 'k', event(0), JSON.stringify(event(0)))
    const [record] = recent.take<ReturnType<typeof event>>(0, 0, 1) ?? []
    expect(() => {
      ;(record?.value.core.resources[0] as { n: number }).n = 7
    }).toThrow(TypeError)
    expect(recent.take(0, 0, 1)?.[0]?.value).toEqual(event(0))
  })

  // Freezing walks every object of a record (a correlation: 5-15 µs): only values that two groups share
  // need it. One group's values are its own, as a read from disk gives them.
  it("hands one group's values as they were published, without freezing them", () => {
    const recent = createRecentRecords(1, 10)
    const published = event(0)
    recent.add(0, 0, 'k', published, JSON.stringify(published))
    const [record] = recent.take<ReturnType<typeof event>>(0, 0, 1, false, false) ?? []
    expect(record?.value).toBe(published)
    expect(Object.isFrozen(published.core.resources[0])).toBe(false)
    // Once a second group reads them, they are frozen before they are shared.
    expect(Object.isFrozen(recent.take(0, 0, 1)?.[0]?.value)).toBe(true)
  })

  it('keeps at most its byte budget per partition, whatever size the records are', () => {
    // The watched agent writes its own alert text: 5,000 records of 1 MB each would be held twice over
    // (value and text). Past the budget the oldest are forgotten and read from disk instead.
    const recent = createRecentRecords(1, 5_000, 5_000)
    const big = (n: number) => ({ ...event(n), output: 'x'.repeat(1_000) })
    for (let offset = 0; offset < 20; offset++)
      recent.add(0, offset, 'k', big(offset), JSON.stringify(big(offset)))
    expect(recent.take(0, 0, 1)).toBeUndefined()
    expect(recent.take(0, 16, 4)).toHaveLength(4)
    expect(recent.take(0, 15, 5)).toBeUndefined()
  })

  it('keeps only the text of a record published without its value, and hands it out as text only', () => {
    const recent = createRecentRecords(1, 100)
    for (let offset = 0; offset < 3; offset++)
      recent.add(0, offset, 'k', undefined, JSON.stringify(event(offset)))
    expect(recent.take(0, 0, 3, true)?.map((r) => r.value)).toEqual(
      [0, 1, 2].map((n) => JSON.stringify(event(n))),
    )
    // A consumer of values reads these from disk.
    expect(recent.take(0, 0, 3)).toBeUndefined()
    recent.add(0, 3, 'k', event(3), JSON.stringify(event(3)))
    expect(recent.take(0, 3, 1)?.map((r) => r.value)).toEqual([event(3)])
    expect(recent.take(0, 2, 2)).toBeUndefined()
  })
})
