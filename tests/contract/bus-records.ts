// Test records shared by the contract suite and the crash child (which runs outside vitest).
import type { BusRecord, DeliveredRecord } from '../../bus/bus.ts'

export type Item = { key: string; seq: number }

/** `count` records over `keys` keys, numbered from `from` in publish order. */
export const records = (count: number, keys = 5, from = 0): BusRecord<Item>[] =>
  Array.from({ length: count }, (_, i) => {
    const key = `agent-${(from + i) % keys}`
    return { key, value: { key, seq: from + i } }
  })

export const seqs = (delivered: readonly DeliveredRecord<Item>[]): number[] =>
  delivered.map((r) => r.value.seq)
export const sorted = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b)
export const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i)

/** Per key, the sequence numbers in delivery order. */
export function byKey(delivered: readonly DeliveredRecord<Item>[]): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const r of delivered) out.set(r.key, [...(out.get(r.key) ?? []), r.value.seq])
  return out
}
