// Decoders claim replay's files themselves (ingest/replay-file-claims.ts): the main thread from the front,
// threads from the back. Whatever the interleaving, every file is read by exactly one decoder, and each
// decoder's files are one stretch of the name order.
import { describe, expect, it } from 'vitest'
import { claimFromBack, claimFromFront, fileClaims } from '../../../ingest/replay-file-claims.ts'

/** Runs the claimers in the order `turns` names (by index), each until it has no file left. */
function claimAll(count: number, turns: number[], fromFront: boolean[]) {
  const buffer = fileClaims(count)
  const claimers = fromFront.map((front) => (front ? claimFromFront(buffer) : claimFromBack(buffer)))
  const got: number[][] = claimers.map(() => [])
  const over = claimers.map(() => false)
  for (let t = 0; !over.every(Boolean); t++) {
    // The one whose turn it is, or (when it has stopped) the first that has not.
    const turn = turns[t % turns.length] as number
    const who = over[turn] ? over.indexOf(false) : turn
    const at = (claimers[who] as () => number | undefined)()
    if (at === undefined) over[who] = true
    else got[who]?.push(at)
  }
  return got
}

describe('replay file claims', () => {
  it('gives every file to exactly one decoder, the front and the back each one stretch', () => {
    for (const turns of [[0], [1], [0, 1], [0, 0, 0, 1], [1, 1, 1, 0], [0, 1, 1]]) {
      const [front, back] = claimAll(10, turns, [true, false]) as [number[], number[]]
      expect([...front, ...back].sort((a, b) => a - b)).toEqual([...Array(10).keys()])
      // The main thread's files in order from the start, the thread's from the end down.
      expect(front).toEqual([...Array(front.length).keys()])
      expect(back).toEqual([...Array(back.length).keys()].map((n) => 9 - n))
    }
  })

  it('shares the back among several threads, with or without the main thread', () => {
    const threadsOnly = claimAll(7, [0, 1, 2, 1], [false, false, false])
    expect(threadsOnly.flat().sort((a, b) => a - b)).toEqual([...Array(7).keys()])
    const beside = claimAll(7, [0, 1, 2, 0, 0], [true, false, false])
    expect(beside.flat().sort((a, b) => a - b)).toEqual([...Array(7).keys()])
  })

  it('claims nothing of an empty list', () => {
    expect(claimAll(0, [0, 1], [true, false])).toEqual([[], []])
  })
})
