import { describe, expect, it } from 'vitest'
import { createPartitionCommits } from '../../../bus/kafka-partition-commits.ts'
import { gate } from '../../helpers/gate.ts'

describe('a Kafka consumer’s partition commits', () => {
  it('commits a chunk up to its handler’s bound, and nothing past records held back before a chunk it could not hand over', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const send = async (offset: number) => void sent.push(offset)
    expect(commits.chunkDone(0, 10, { commit: 4 })).toBe(4)
    await commits.commitBatch(0, 4, send)
    expect(commits.chunkDone(0, 12, 'nothing')).toBeUndefined()
    expect(commits.chunkDone(0, 20, undefined)).toBe(20)
    await commits.commitBatch(0, 20, send)
    // Never back, nor twice.
    await commits.commitBatch(0, 15, send)
    expect(sent).toEqual([4, 20])
    expect(commits.committed(0)).toBe(20)
  })

  it('commits nothing below the offset the partition’s assignment started from, nor moves the floor later', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const send = async (offset: number) => void sent.push(offset)
    // Assigned with the group's commit at 170; the handler has saved nothing in this assignment yet.
    commits.begin(0, 170)
    expect(commits.chunkDone(0, 200, { commit: 0 })).toBe(0)
    await commits.commitBatch(0, 0, send)
    await commits.commitAdvanced(0, 120, () => true, send)
    expect(sent).toEqual([])
    expect(commits.committed(0)).toBe(170)
    // A seek back within the assignment does not lower the floor.
    commits.begin(0, 100)
    await commits.commitAdvanced(0, 180, () => true, send)
    await commits.commitBatch(0, 150, send)
    expect(sent).toEqual([180])
  })

  it('commits an advanced bound after the commit in progress, never past the records handed over', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const { held: slow, release } = gate()
    commits.chunkDone(0, 10, { commit: 0 })
    await commits.commitBatch(0, 0, async (offset) => void sent.push(offset))
    commits.chunkDone(0, 30, { commit: 6 })
    const batch = commits.commitBatch(0, 6, async (offset) => {
      await slow
      sent.push(offset)
    })
    const advanced = commits.commitAdvanced(
      0,
      99,
      () => true,
      async (offset) => void sent.push(offset),
    )
    release()
    await Promise.all([batch, advanced])
    expect(sent).toEqual([0, 6, 30])
  })

  it('commits no advanced bound once the partition is not held, nor one it forgot after a rejoin', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const send = async (offset: number) => void sent.push(offset)
    commits.chunkDone(0, 10, { commit: 0 })
    commits.chunkDone(1, 10, { commit: 0 })
    await commits.commitBatch(0, 0, send)
    await commits.commitBatch(1, 0, send)
    await commits.commitAdvanced(0, 5, () => false, send)
    commits.keepOnly([0])
    await commits.commitAdvanced(1, 5, () => true, send)
    expect(sent).toEqual([0, 0])
    expect(commits.committed(1)).toBeUndefined()
  })
  it('keeps a chunk’s hold when an advanced commit on the wire ends after it: nothing past records no checkpoint has', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const send = async (offset: number) => void sent.push(offset)
    // Offsets 0–9 handed over, saved up to 4; then a timer save takes them all: advance(10), slow on the wire.
    commits.chunkDone(0, 10, { commit: 5 })
    await commits.commitBatch(0, 5, send)
    const { held: slow, release } = gate()
    const advanced = commits.commitAdvanced(
      0,
      10,
      () => true,
      async (offset) => {
        await slow
        sent.push(offset)
      },
    )
    await Promise.resolve()
    // Meanwhile 10–19 are handed over, not saved: the handler holds its bound at 10.
    expect(commits.chunkDone(0, 20, { commit: 10 })).toBe(10)
    const batch = commits.commitBatch(0, 10, send)
    release()
    await Promise.all([advanced, batch])
    // A chunk of only undecodable records commits nothing past 10–19.
    expect(commits.chunkDone(0, 25, 'nothing')).toBeUndefined()
    expect(sent).toEqual([5, 10])
  })
  it('lets a batch’s commit take the place of an outside commit still waiting its turn (it carries the later save)', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const send = async (offset: number) => void sent.push(offset)
    const { held: slow, release } = gate()
    commits.chunkDone(0, 10, { commit: 0 })
    await commits.commitBatch(0, 0, send)
    // A batch commit on the wire; behind it, two timer saves' bounds, then the next batch's.
    commits.chunkDone(0, 20, { commit: 5 })
    const onTheWire = commits.commitBatch(0, 5, async (offset) => {
      await slow
      sent.push(offset)
    })
    const saves = [
      commits.commitAdvanced(0, 12, () => true, send),
      commits.commitAdvanced(0, 15, () => true, send),
    ]
    commits.chunkDone(0, 30, { commit: 20 })
    const next = commits.commitBatch(0, 20, send)
    release()
    await Promise.all([onTheWire, ...saves, next])
    expect(sent).toEqual([0, 5, 20])
  })

  it('sends one outside commit, the furthest, for the saves that waited their turn together', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const send = async (offset: number) => void sent.push(offset)
    const { held: slow, release } = gate()
    commits.chunkDone(0, 30, { commit: 0 })
    await commits.commitBatch(0, 0, send)
    let sending = () => {}
    const sendingStarted = new Promise<void>((resolve) => {
      sending = resolve
    })
    const onTheWire = commits.commitAdvanced(
      0,
      5,
      () => true,
      async (offset) => {
        sending()
        await slow
        sent.push(offset)
      },
    )
    await sendingStarted
    const waiting = [12, 20, 15].map((bound) => commits.commitAdvanced(0, bound, () => true, send))
    release()
    await Promise.all([onTheWire, ...waiting])
    expect(sent).toEqual([0, 5, 20])
  })

  it('lets every commit waiting its turn go, sending nothing, once given up (a stop that waited long enough)', async () => {
    const commits = createPartitionCommits()
    const sent: number[] = []
    const send = async (offset: number) => void sent.push(offset)
    commits.chunkDone(0, 10, { commit: 0 })
    await commits.commitBatch(0, 0, send)
    // A sick coordinator: the outside commit stays on the wire (kafkajs retries it).
    let sending = () => {}
    const sendingStarted = new Promise<void>((resolve) => {
      sending = resolve
    })
    const stuck = commits.commitAdvanced(
      0,
      10,
      () => true,
      () => {
        sending()
        return new Promise<void>(() => {})
      },
    )
    await sendingStarted
    commits.chunkDone(0, 20, { commit: 20 })
    const behind = commits.commitBatch(0, 20, send)
    commits.giveUp()
    await behind
    await commits.settled()
    await commits.commitBatch(0, 20, send)
    expect(sent).toEqual([0])
    void stuck
  })
})
