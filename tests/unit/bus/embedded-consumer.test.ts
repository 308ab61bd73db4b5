import { describe, expect, it } from 'vitest'
import { backoffMs } from '../../../bus/embedded-consumer.ts'

describe('backoffMs', () => {
  it('doubles from 100 ms, jittered between half and all of it', () => {
    expect([1, 2, 3, 4].map((a) => backoffMs(a, () => 1))).toEqual([100, 200, 400, 800])
    expect([1, 2, 3, 4].map((a) => backoffMs(a, () => 0))).toEqual([50, 100, 200, 400])
  })

  it('is capped at 10 s however many attempts failed', () => {
    expect(backoffMs(8, () => 1)).toBe(10_000)
    expect(backoffMs(10_000, () => 1)).toBe(10_000)
  })
})
