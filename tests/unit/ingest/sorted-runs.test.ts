import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { createSortedRuns, type SortKey } from '../../../ingest/sorted-runs.ts'
import { shuffled } from '../../helpers/hourly-trail-files.ts'
import { tempDir } from '../../helpers/random-names.ts'

type Line = SortKey & { text: string }

/** Lines with many exact ties: 5 times, 2 nanosecond values, 4 ids, and texts that differ or not. */
function lines(count: number): Line[] {
  return Array.from({ length: count }, (_, n) => ({
    time: 1_700_000_000_000 + (n % 5) * 1000,
    time_ns: n % 2,
    id: `ev-${n % 4}`,
    text: `${'x'.repeat(n % 7)}ü${n % 9}`,
  }))
}

function sortAll(input: readonly Line[], budgetBytes: number, fanIn: number) {
  const spillDir = tempDir()
  const runs = createSortedRuns({ budgetBytes, spillDir, fanIn, readBytes: 256 })
  for (const line of input) runs.add(line, JSON.stringify(line))
  const out = [...runs.read<Line>()]
  const spilled = runs.spilled()
  runs.close()
  return { out, spilled, left: readdirSync(spillDir) }
}

describe('createSortedRuns', () => {
  it('gives the same order in memory, spilled in one merge, and merged in several passes', () => {
    const input = lines(3000)
    const inMemory = sortAll(input, 1 << 30, 64)
    const onePass = sortAll(shuffled(input, 3), 40_000, 64)
    const manyPasses = sortAll(shuffled(input, 4), 8_000, 3)
    expect(inMemory.spilled).toBe(0)
    expect(onePass.spilled).toBeGreaterThan(3)
    expect(manyPasses.spilled).toBeGreaterThan(onePass.spilled)
    expect(onePass.out).toEqual(inMemory.out)
    expect(manyPasses.out).toEqual(inMemory.out)
    expect(onePass.left).toEqual([])
    expect(manyPasses.left).toEqual([])
  })

  it('orders by time, then nanoseconds, then id, then the line itself', () => {
    const input = lines(200)
    const { out } = sortAll(shuffled(input, 5), 2_000, 4)
    const text = (l: Line) => JSON.stringify(l)
    const reference = [...input].sort(
      (a, b) =>
        a.time - b.time ||
        a.time_ns - b.time_ns ||
        a.id.localeCompare(b.id, 'en') ||
        (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0),
    )
    expect(out).toEqual(reference)
  })
})
