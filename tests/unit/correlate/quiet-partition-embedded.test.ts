// A partition that goes quiet on the embedded bus, with the correlator on its worker thread as `nerve run`
// starts it: the timer's save of the last records (max_interval after the last batch) must reach the
// group's committed offset in the bus's offsets table, or a restart reads up to max_records − 1 records
// again and retention keeps them, for as long as the partition stays quiet.
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { startCorrelateThread } from '../../../correlate/correlate-thread.ts'
import { correlateGroup } from '../../../correlate/start-correlate.ts'
import { openBusDataDir } from '../../helpers/bus-data-dir.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { shellBurst } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

describe('the correlator thread on the embedded bus, on a partition that goes quiet after a burst', () => {
  it('brings the group’s committed offset to the partition’s end', { timeout: 60_000 }, async () => {
    // The default cadence: a save every 2,000 records or 1 s.
    const dir = openBusDataDir('nerve-quiet-partition', { partitions: 2, maxBatch: 500 })
    const { bus, config } = dir
    const stage = await startCorrelateThread(config, dir.stageDeps())
    const offsets = new Database(bus.file, { readonly: true })
    cleanups.push(async () => {
      offsets.close()
      await stage.close()
      await dir.close()
    })
    // One agent's burst of 2,500 shells, a second apart: all on its one partition. Then nothing.
    const burst = shellBurst('e-burst', 2_500, T0)
    for (let i = 0; i < burst.length; i += 500) await bus.publish(eventsTopic, burst.slice(i, i + 500))
    const committed = offsets.prepare<[string], { partition: number; next_offset: number }>(
      'SELECT partition, next_offset FROM group_offsets WHERE group_name = ? ORDER BY partition',
    )
    const burstPartition = () => committed.all(correlateGroup).find((row) => row.next_offset > 0)
    await waitFor(() => burstPartition()?.next_offset === 2_500, {
      timeoutMs: 30_000,
      what: 'the group’s commit to reach the end of the burst',
    })
    expect(
      committed
        .all(correlateGroup)
        .map((row) => row.next_offset)
        .sort(),
    ).toEqual([0, 2_500])
  })
})
