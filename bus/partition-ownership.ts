// Which partitions a subscriber owns, and the promise that its state for each is restored. Kafka moves
// partitions between instances on a rebalance; a batch of partition p is handled only after the onAssign()
// naming p resolved, so a correlator restores p's stream time, buffers and seen ids before it processes p.
// Hooks run one at a time, in rebalance order.
import type { SubscribeOptions } from './bus.ts'

export type OwnershipObserver = {
  /** onAssign() finished for these partitions after `ms` (failed: threw, will be retried on the next batch). */
  restored(partitions: number[], ms: number, failed: boolean): void
  revokeFailed(partitions: number[], err: unknown): void
}

export type PartitionOwnership = {
  /** The whole assignment after a rebalance: revokes what is gone, starts restoring what is new. */
  assign(partitions: readonly number[]): void
  /** Resolves once `partition` is restored; a partition nobody announced is assigned now (and restored). */
  ready(partition: number): Promise<void>
  /** Revokes everything (the subscription stops) once pending hooks are done. */
  revokeAll(): Promise<void>
  owned(): number[]
  /** True while `partition` is assigned to this member and restored (from the rebalance that names it). */
  owns(partition: number): boolean
  /** Partitions whose onAssign() has not resolved yet. */
  restoring(): number
  /**
   * Which assignment of `partition` this member holds: a number that changes each time the partition is
   * assigned to it anew (undefined while it is not), so that work begun under one assignment can tell that
   * the partition moved away and came back meanwhile.
   */
  tenure(partition: number): number | undefined
}

type Hooks = Pick<SubscribeOptions, 'onAssign' | 'onRevoke'>

export function createPartitionOwnership(
  hooks: Hooks,
  observer: OwnershipObserver,
  now: () => number,
): PartitionOwnership {
  const owned = new Map<number, Promise<void>>()
  const tenures = new Map<number, number>()
  let assignments = 0
  const pending = new Set<number>()
  let chain: Promise<void> = Promise.resolve()

  const revoke = (partitions: number[]) => {
    if (partitions.length === 0 || !hooks.onRevoke) return
    const onRevoke = hooks.onRevoke
    chain = chain.then(() => onRevoke(partitions).catch((err) => observer.revokeFailed(partitions, err)))
  }

  const start = (partitions: number[]) => {
    if (partitions.length === 0) return
    for (const p of partitions) pending.add(p)
    const started = now()
    const ready = chain.then(async () => {
      let failed = true
      try {
        await hooks.onAssign?.(partitions)
        failed = false
      } finally {
        for (const p of partitions) pending.delete(p)
        observer.restored(partitions, now() - started, failed)
      }
    })
    chain = ready.catch(() => undefined)
    for (const p of partitions) {
      owned.set(p, ready)
      tenures.set(p, ++assignments)
    }
  }

  const assign = (partitions: readonly number[]) => {
    const next = new Set(partitions)
    const gone = [...owned.keys()].filter((p) => !next.has(p))
    for (const p of gone) {
      owned.delete(p)
      tenures.delete(p)
    }
    revoke(gone)
    start([...next].filter((p) => !owned.has(p)).sort((a, b) => a - b))
  }

  const ready = async (partition: number) => {
    if (!owned.has(partition)) start([partition])
    const restoring = owned.get(partition)
    try {
      await restoring
    } catch (err) {
      // Forget the failed restore so the next batch of this partition runs onAssign() again.
      if (owned.get(partition) === restoring) {
        owned.delete(partition)
        tenures.delete(partition)
      }
      throw err
    }
  }

  const revokeAll = async () => {
    const all = [...owned.keys()].sort((a, b) => a - b)
    owned.clear()
    tenures.clear()
    revoke(all)
    await chain
  }

  return {
    assign,
    ready,
    revokeAll,
    owned: () => [...owned.keys()].sort((a, b) => a - b),
    owns: (partition) => owned.has(partition) && !pending.has(partition),
    restoring: () => pending.size,
    tenure: (partition) => tenures.get(partition),
  }
}
