import { describe, expect, it } from 'vitest'
import { startGroupCommit } from '../../../bus/embedded-group-commit.ts'
import type { EmbeddedStorage } from '../../../bus/embedded-storage.ts'
import type { EmbeddedTopics } from '../../../bus/embedded-topics.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'

const diskFull = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })

/** A bus file whose writes fail while `disk.full`; only what the group commit calls is there. */
function fakeStorage(disk: { full: boolean }) {
  const written = { writes: 0, probes: 0 }
  const storage = {
    file: '/var/lib/nerve/bus.sqlite',
    write: (_rows, commits) => {
      if (disk.full) throw diskFull()
      written.writes++
      return commits.map((c) => ({ ...c, nextOffset: 0 }))
    },
    sync: async () => {},
    discard: () => {},
    probe: () => {
      if (disk.full) throw diskFull()
      written.probes++
    },
  } as Partial<EmbeddedStorage> as EmbeddedStorage
  return { storage, written }
}

const commitOf = (nextOffset: number) => ({ group: 'nerve-correlate', topicId: 1, partition: 3, nextOffset })

describe('startGroupCommit', () => {
  it('reports a failed write of offset commits alone as a commit failure, not as a refused publish', async () => {
    const rt = createTestRuntime()
    const { storage } = fakeStorage({ full: true })
    const groupCommit = startGroupCommit(storage, {
      topics: {} as EmbeddedTopics,
      log: rt.log,
      telemetry: rt.metrics.component('embedded_bus'),
      now: rt.now,
    })
    const outcome = groupCommit.commitOffset(commitOf(120)).catch((err: Error) => err)
    await expect(outcome).resolves.toMatchObject({
      code: 'STORAGE_FULL',
      message: 'Bus storage is full while committing offsets; nothing was written.',
    })
    // The consumer logs and counts it once per step of its backoff; no ERROR line of a publish per try.
    expect(rt.logs.filter((l) => l.level === 'error')).toEqual([])
    expect(
      await rt.metricValue('nerve_component_errors_total', { component: 'embedded_bus', stage: 'publish' }),
    ).toBe(0)
    groupCommit.stopProbing()
  })

  it('says it cannot take writes from a failed write until one succeeds, probing the disk while nothing is written', async () => {
    const rt = createTestRuntime()
    const disk = { full: true }
    const { storage, written } = fakeStorage(disk)
    const groupCommit = startGroupCommit(storage, {
      topics: {} as EmbeddedTopics,
      log: rt.log,
      telemetry: rt.metrics.component('embedded_bus'),
      now: rt.now,
      probeEveryMs: 10,
    })
    expect(groupCommit.failing()).toBeUndefined()
    await groupCommit.commitOffset(commitOf(120)).catch(() => {})
    await groupCommit.commitOffset(commitOf(120)).catch(() => {})
    // Nothing more is written (every sender was answered 507): the probes fail as well and are counted.
    await waitFor(() => (groupCommit.failing()?.writes ?? 0) >= 4, { what: 'two failed probes' })
    expect(groupCommit.failing()?.error).toMatchObject({ code: 'STORAGE_FULL' })
    expect(written.writes).toBe(0)
    // Room again: the next probe succeeds, with no publish or commit to show it.
    disk.full = false
    await waitFor(() => groupCommit.failing() === undefined, { what: 'a probe that succeeds' })
    expect(written).toEqual({ writes: 0, probes: 1 })
    expect(rt.logs.filter((l) => l.msg === 'Bus storage takes writes again.')).toHaveLength(1)
    groupCommit.stopProbing()
  })

  it('is ready again at the next group that is written, and probes nothing while it has one', async () => {
    const rt = createTestRuntime()
    const disk = { full: true }
    const { storage, written } = fakeStorage(disk)
    const groupCommit = startGroupCommit(storage, {
      topics: {} as EmbeddedTopics,
      log: rt.log,
      telemetry: rt.metrics.component('embedded_bus'),
      now: rt.now,
      probeEveryMs: 60_000,
    })
    await groupCommit.commitOffset(commitOf(120)).catch(() => {})
    expect(groupCommit.failing()?.writes).toBe(1)
    disk.full = false
    await groupCommit.commitOffset(commitOf(120))
    expect(groupCommit.failing()).toBeUndefined()
    expect(written).toEqual({ writes: 1, probes: 0 })
    groupCommit.stopProbing()
  })
})
