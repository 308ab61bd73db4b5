import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { mergeRuns } from '../../../ingest/merge-sorted-runs.ts'
import { eventKind, type RunInfo, type SortKey, standInKind } from '../../../ingest/sorted-run-records.ts'
import { createRunWriter } from '../../../ingest/sorted-runs.ts'
import { shuffled } from '../../helpers/hourly-trail-files.ts'
import { tempDir } from '../../helpers/random-names.ts'

type Line = SortKey & { kind: number; text: string }

/**
 * Records with many exact ties: 5 times, 2 nanosecond values, 4 ids (one with a lone surrogate, which
 * UTF-8 would lose), texts that differ or not, stand-ins and events.
 */
function lines(count: number): Line[] {
  return Array.from({ length: count }, (_, n) => ({
    time: 1_700_000_000_000 + (n % 5) * 1000,
    time_ns: n % 2,
    id: n % 4 === 3 ? 'ev-\ud800' : `ev-${n % 4}`,
    kind: n % 3 === 0 ? standInKind : eventKind,
    text: n % 3 === 0 ? 'no_rule' : JSON.stringify({ n: `${'x'.repeat(n % 7)}ü${n % 9}` }),
  }))
}

function sortAll(input: readonly Line[], budgetBytes: number, options: { fanIn: number; keep: boolean }) {
  const dir = tempDir()
  let n = 0
  const newRunPath = () => join(dir, `run-${n++}`)
  const runs: RunInfo[] = []
  const writer = createRunWriter({ budgetBytes, newRunPath, onRun: (run) => runs.push(run) })
  for (const line of input) writer.add(line, line.kind, line.text)
  if (!options.keep) writer.flush()
  const memory = options.keep ? writer.takeHeld() : undefined
  const spilled = runs.length
  const out: Line[] = []
  for (const r of mergeRuns(runs, memory, { fanIn: options.fanIn, newRunPath, readBytes: 64 }))
    out.push({ time: r.time, time_ns: r.time_ns, id: r.id, kind: r.kind, text: r.text() })
  return { out, spilled, left: readdirSync(dir) }
}

const lineOf = (l: Line) =>
  l.kind === eventKind
    ? l.text
    : JSON.stringify({ id: l.id, time: l.time, time_ns: l.time_ns, ignored: l.text })

describe('sorted runs', () => {
  it('give the same order in memory, spilled and merged at once, and merged in several passes', () => {
    const input = lines(3000)
    const inMemory = sortAll(input, 1 << 30, { fanIn: 64, keep: true })
    const onePass = sortAll(shuffled(input, 3), 40_000, { fanIn: 64, keep: true })
    const manyPasses = sortAll(shuffled(input, 4), 8_000, { fanIn: 3, keep: false })
    expect(inMemory.spilled).toBe(0)
    expect(onePass.spilled).toBeGreaterThan(3)
    expect(manyPasses.spilled).toBeGreaterThan(onePass.spilled)
    expect(onePass.out).toEqual(inMemory.out)
    expect(manyPasses.out).toEqual(inMemory.out)
    expect(inMemory.out).toHaveLength(3000)
    // Run files are removed as they are merged.
    expect(onePass.left).toEqual([])
    expect(manyPasses.left).toEqual([])
  })

  it('give back every id and text as added, whatever characters they hold, in memory and spilled', () => {
    // Ids and texts of one byte per character (ASCII, then latin1 past 0x7f), of wider characters and a
    // lone surrogate, short (a stand-in's reason) and long (an event's JSON).
    const ids = ['3f2b6c1e-9a4d-4e8b-b1c2-0d9e8f7a6b5c', 'ev-é', 'ev-名前', 'ev-\ud800x', 'ev-ÿ\u0100']
    const texts = [
      'no_rule',
      'ignoré',
      '名前',
      JSON.stringify({ output: 'x'.repeat(40) }),
      `{"o":"${'é'.repeat(40)}"}`,
    ]
    const input: Line[] = ids.flatMap((id, i) =>
      texts.map((text, j) => ({ time: 1_700_000_000_000 + i, time_ns: j, id, kind: eventKind, text })),
    )
    const inMemory = sortAll(shuffled(input, 6), 1 << 30, { fanIn: 64, keep: true })
    const spilled = sortAll(shuffled(input, 7), 500, { fanIn: 4, keep: false })
    expect(spilled.spilled).toBeGreaterThan(4)
    expect(inMemory.out).toEqual(input)
    expect(spilled.out).toEqual(input)
  })

  it('order by time, then nanoseconds, then id, then the JSON line', () => {
    const input = lines(200)
    const { out } = sortAll(shuffled(input, 5), 2_000, { fanIn: 4, keep: false })
    const reference = [...input].sort(
      (a, b) =>
        a.time - b.time ||
        a.time_ns - b.time_ns ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) ||
        (lineOf(a) < lineOf(b) ? -1 : lineOf(a) > lineOf(b) ? 1 : 0),
    )
    expect(out).toEqual(reference)
  })

  it('open a run only when the merge reaches its first key: runs in time order stay one or two open', () => {
    // 40 runs of consecutive times, each spanning into the next one's first time: at most 2 overlap.
    const dir = tempDir()
    let n = 0
    const newRunPath = () => join(dir, `run-${n++}`)
    const runs: RunInfo[] = []
    const writer = createRunWriter({ budgetBytes: 1 << 30, newRunPath, onRun: (run) => runs.push(run) })
    for (let run = 0; run < 40; run++) {
      for (let k = 0; k <= 100; k++)
        writer.add({ time: run * 100 + k, time_ns: 0, id: `r${run}-${k}` }, standInKind, 'no_rule')
      writer.flush()
    }
    const merged = mergeRuns(shuffled(runs, 6), undefined, { fanIn: 2, newRunPath })
    // A merged record is valid until the next one is asked for: read it at once.
    const times: number[] = []
    for (const r of merged) times.push(r.time)
    expect(times).toEqual([...times].sort((a, b) => a - b))
    expect(times).toHaveLength(40 * 101)
    // No merge pass was needed: the only files ever written are the 40 runs, now removed.
    expect(n).toBe(40)
    expect(readdirSync(dir)).toEqual([])
  })

  it("drop a rejected file's records, held or already spilled, and keep the others'", () => {
    // Three files of 300 records each; the budget fills during each, so the middle one (rejected when
    // its last bytes turn out bad) has records in memory and in a run of its own when it is dropped.
    const input = lines(900)
    const files = [input.slice(0, 300), input.slice(300, 600), input.slice(600)]
    for (const keep of [true, false]) {
      const dir = tempDir()
      let n = 0
      const newRunPath = () => join(dir, `run-${n++}`)
      const runs: RunInfo[] = []
      const writer = createRunWriter({ budgetBytes: 20_000, newRunPath, onRun: (run) => runs.push(run) })
      files.forEach((file, at) => {
        writer.begin()
        for (const line of file) writer.add(line, line.kind, line.text)
        if (at === 1) writer.discard()
        else writer.commit()
      })
      if (!keep) writer.flush()
      const memory = keep ? writer.takeHeld() : undefined
      const out: Line[] = []
      for (const r of mergeRuns(runs, memory, { fanIn: 64, newRunPath }))
        out.push({ time: r.time, time_ns: r.time_ns, id: r.id, kind: r.kind, text: r.text() })
      expect(out).toEqual(
        sortAll([...(files[0] ?? []), ...(files[2] ?? [])], 1 << 30, { fanIn: 64, keep: true }).out,
      )
      expect(writer.count()).toBe(600)
      // The dropped file's run is deleted, not left in the spill dir.
      expect(readdirSync(dir)).toEqual([])
    }
  })
})
