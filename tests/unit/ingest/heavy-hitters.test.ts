// The heavy-hitters summary behind the busiest-agent warning: bounded memory, and whatever order the
// watched agent sends in, any agent with more than 1 / (k + 1) of the events is counted, never above its
// true count and at most `undercount` below it. Keys are agent ids as ingest names them.
import { describe, expect, it } from 'vitest'
import { createHeavyHitters } from '../../../ingest/heavy-hitters.ts'
import { seededRandom } from '../../helpers/seeded-random.ts'

const flooder = 'agents/data-cleaner'
const fleet = (n: number) => Array.from({ length: n }, (_, i) => `team${i}/app`)

/** Feeds the stream, then checks every bound against the true counts. */
function check(k: number, stream: readonly string[]) {
  const hh = createHeavyHitters(k)
  const truth = new Map<string, number>()
  let most = 0
  for (const key of stream) {
    hh.add(key)
    truth.set(key, (truth.get(key) ?? 0) + 1)
    most = Math.max(most, hh.top(Number.POSITIVE_INFINITY).length)
  }
  const counted = new Map(hh.top(Number.POSITIVE_INFINITY).map((h) => [h.key, h.count]))
  expect(most).toBeLessThanOrEqual(k)
  expect(hh.total()).toBe(stream.length)
  expect(hh.undercount()).toBeLessThanOrEqual(stream.length / (k + 1))
  for (const [key, count] of counted) {
    const actual = truth.get(key) as number
    expect(count).toBeLessThanOrEqual(actual)
    expect(count).toBeGreaterThanOrEqual(actual - hh.undercount())
  }
  for (const [key, actual] of truth)
    if (actual > stream.length / (k + 1)) expect(counted.has(key), key).toBe(true)
  return { hh, counted }
}

describe('heavy hitters', () => {
  it('counts exactly while there are at most k keys, and lists the busiest first', () => {
    const hh = createHeavyHitters(4)
    for (const key of ['billing/api', flooder, flooder, 'etl/runner', flooder, 'billing/api', 'reports/app'])
      hh.add(key)
    expect(hh.top(3)).toEqual([
      { key: flooder, count: 3 },
      { key: 'billing/api', count: 2 },
      { key: 'etl/runner', count: 1 },
    ])
    expect([hh.total(), hh.undercount()]).toEqual([7, 0])
    hh.clear()
    expect([hh.top(3), hh.total(), hh.undercount()]).toEqual([[], 0, 0])
  })

  it('counts a flood that starts after many more one-event agents than counters', () => {
    const { counted, hh } = check(64, [...fleet(10_000), ...Array.from({ length: 30_000 }, () => flooder)])
    expect(hh.top(1)[0]?.key).toBe(flooder)
    expect(counted.get(flooder)).toBeGreaterThanOrEqual(30_000 - 40_000 / 65)
  })

  it('counts a flood interleaved with a new agent at every other event', () => {
    check(
      64,
      fleet(20_000).flatMap((member) => [member, flooder]),
    )
  })

  it('counts an agent just over 1 / (k + 1) of the events amid a rotating crowd', () => {
    const k = 16
    const crowd = fleet(k * 4)
    const stream: string[] = []
    for (let i = 0; i < 17_000; i++)
      stream.push(i % (k + 1) === 0 ? flooder : (crowd[i % crowd.length] as string))
    for (let i = 0; i < 50; i++) stream.push(flooder)
    const { counted } = check(k, stream)
    expect(counted.has(flooder)).toBe(true)
  })

  it('holds its bounds on skewed random traffic from a fleet', () => {
    const random = seededRandom(20261207)
    const agents = fleet(5_000)
    // A few busy agents and a long tail: the agent is the index of a number skewed towards 0.
    const stream = Array.from(
      { length: 50_000 },
      () => agents[Math.floor(random() ** 4 * agents.length)] as string,
    )
    check(64, stream)
    check(1, stream)
  })

  it('takes only a positive whole number of counters', () => {
    for (const k of [0, -1, 1.5, Number.NaN]) expect(() => createHeavyHitters(k)).toThrow(RangeError)
  })
})
