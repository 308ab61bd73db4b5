import { describe, expect, it } from 'vitest'
import { startGroupCommit } from '../../../bus/embedded-group-commit.ts'
import type { EmbeddedStorage } from '../../../bus/embedded-storage.ts'
import type { EmbeddedTopics } from '../../../bus/embedded-topics.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

const diskFull = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })

/** A bus file whose writes fail while `disk.full`; only what the group commit calls is there. */
function fakeStorage(disk: { full: boolean }) {
  const written = { writes: 0 }
  const storage = {
    file: '/var/lib/nerve/bus.sqlite',
    write: (_rows, commits) => {
      if (disk.full) throw diskFull()
      written.writes++
      return commits.map((c) => ({ ...c, nextOffset: 0 }))
    },
    sync: async () => {},
    discard: () => {},
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
  })
})
