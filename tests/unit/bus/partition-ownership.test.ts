import { describe, expect, it } from 'vitest'
import { createPartitionOwnership } from '../../../bus/partition-ownership.ts'

function setup(opts: { failAssign?: number } = {}) {
  const calls: string[] = []
  const restored: { partitions: number[]; failed: boolean }[] = []
  let failures = opts.failAssign ?? 0
  const ownership = createPartitionOwnership(
    {
      onAssign: async (partitions) => {
        calls.push(`assign ${partitions.join(',')}`)
        if (failures-- > 0) throw new Error('state topic unreachable')
      },
      onRevoke: async (partitions) => {
        calls.push(`revoke ${partitions.join(',')}`)
      },
    },
    {
      restored: (partitions, _ms, failed) => restored.push({ partitions, failed }),
      revokeFailed: () => calls.push('revoke failed'),
    },
    () => 0,
  )
  return { ownership, calls, restored }
}

describe('partition ownership', () => {
  it('restores newly assigned partitions before their batches and revokes those that moved away', async () => {
    const { ownership, calls } = setup()
    ownership.assign([0, 1, 2])
    expect(ownership.restoring()).toBe(3)
    // Not its own to write for yet: a stage's state of it is being restored.
    expect(ownership.owns(1)).toBe(false)
    await ownership.ready(1)
    expect(ownership.restoring()).toBe(0)
    expect(ownership.owns(1)).toBe(true)
    ownership.assign([2, 3])
    await ownership.ready(3)
    expect(calls).toEqual(['assign 0,1,2', 'revoke 0,1', 'assign 3'])
    expect(ownership.owned()).toEqual([2, 3])
  })

  it('keeps partitions it still owns across a rebalance without restoring them again', async () => {
    const { ownership, calls } = setup()
    ownership.assign([0, 1])
    ownership.assign([0, 1])
    await ownership.ready(0)
    expect(calls).toEqual(['assign 0,1'])
  })

  it('tells one assignment of a partition from the next: kept across a rebalance, new once it came back', async () => {
    const { ownership } = setup()
    ownership.assign([0, 1])
    const first = ownership.tenure(0)
    expect(first).toBeDefined()
    ownership.assign([0])
    expect(ownership.tenure(0)).toBe(first)
    expect(ownership.tenure(1)).toBeUndefined()
    ownership.assign([])
    ownership.assign([0])
    expect(ownership.tenure(0)).not.toBe(first)
  })

  it('assigns a partition that a batch names before any rebalance announced it', async () => {
    const { ownership, calls } = setup()
    await ownership.ready(5)
    expect(calls).toEqual(['assign 5'])
    expect(ownership.owned()).toEqual([5])
  })

  it('runs onAssign again on the next batch after it failed, and reports both outcomes', async () => {
    const { ownership, calls, restored } = setup({ failAssign: 1 })
    ownership.assign([4])
    await expect(ownership.ready(4)).rejects.toThrow('state topic unreachable')
    await ownership.ready(4)
    expect(calls).toEqual(['assign 4', 'assign 4'])
    expect(restored).toEqual([
      { partitions: [4], failed: true },
      { partitions: [4], failed: false },
    ])
  })

  it('revokes everything it owns when the subscription stops', async () => {
    const { ownership, calls } = setup()
    ownership.assign([2, 0])
    await ownership.revokeAll()
    expect(calls).toEqual(['assign 0,2', 'revoke 0,2'])
    expect(ownership.owned()).toEqual([])
  })

  it('runs the hooks one at a time, in rebalance order', async () => {
    const order: string[] = []
    let release: () => void = () => undefined
    const slow = new Promise<void>((resolve) => {
      release = resolve
    })
    const ownership = createPartitionOwnership(
      {
        onAssign: async (p) => {
          order.push(`assign ${p} start`)
          if (p[0] === 0) await slow
          order.push(`assign ${p} end`)
        },
        onRevoke: async (p) => {
          order.push(`revoke ${p}`)
        },
      },
      { restored: () => undefined, revokeFailed: () => undefined },
      () => 0,
    )
    ownership.assign([0])
    ownership.assign([1])
    release()
    await ownership.ready(1)
    expect(order).toEqual(['assign 0 start', 'assign 0 end', 'revoke 0', 'assign 1 start', 'assign 1 end'])
  })
})
