// The output arena keeps ASCII text exactly, refuses the rest, recycles emptied chunks and moves the last
// live records out of sparse chunks instead of keeping them all.
import { describe, expect, it } from 'vitest'
import { TextArena } from '../../../correlate/text-arena.ts'

const text = (i: number) =>
  `${i}: Notice A shell was spawned in a container ${'x'.repeat(i % 300)} (pod=w-${i})`

describe('text arena', () => {
  it('gives back ASCII text exactly and refuses text it cannot keep byte for byte', () => {
    const arena = new TextArena(8)
    expect(arena.put(0, '')).toBe(true)
    expect(arena.put(1, 'plain \u0000\u007f ascii')).toBe(true)
    expect(arena.put(2, 'café')).toBe(false)
    expect(arena.put(3, 'ÿ')).toBe(false)
    expect(arena.put(4, '\ud800 lone surrogate')).toBe(false)
    expect(arena.put(5, 'x'.repeat(1 << 16))).toBe(false)
    expect(arena.get(0)).toBe('')
    expect(arena.get(1)).toBe('plain \u0000\u007f ascii')
    expect([2, 3, 4, 5].map((slot) => arena.has(slot))).toEqual([false, false, false, false])
    expect(arena.drop(1)).toBe(true)
    expect(arena.drop(1)).toBe(false)
    expect(arena.has(1)).toBe(false)
  })

  it('recycles chunks emptied in arrival order', () => {
    const arena = new TextArena(100)
    for (let i = 0; i < 20_000; i++) {
      if (i >= 100) arena.drop(i % 100)
      expect(arena.put(i % 100, text(i))).toBe(true)
    }
    for (let i = 19_900; i < 20_000; i++) expect(arena.get(i % 100)).toBe(text(i))
    expect(arena.bytes()).toBeLessThanOrEqual(3 * 65_536)
  })

  it('moves long-lived records out of sparse chunks and keeps them intact', () => {
    const slots = 4000
    const arena = new TextArena(slots)
    const live = new Map<number, string>()
    let n = 0
    for (let round = 0; round < 40; round++) {
      for (let slot = 0; slot < slots; slot++) {
        // Every 50th slot keeps its first text for the whole test; the others are replaced each round.
        if (slot % 50 === 0 && live.has(slot)) continue
        arena.drop(slot)
        const t = text(n++)
        expect(arena.put(slot, t)).toBe(true)
        live.set(slot, t)
      }
    }
    for (const [slot, t] of live) expect(arena.get(slot)).toBe(t)
    const liveBytes = [...live.values()].reduce((sum, t) => sum + 2 + t.length, 0)
    expect(arena.bytes()).toBeLessThanOrEqual(liveBytes * 1.1 + 4 * 65_536)
  })
})
