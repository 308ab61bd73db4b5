// A credential link learned from a CloudTrail request is on disk before the request is answered: an STS
// call answered 202 and then a power loss must not leave the key's next calls filed under the bare role.
// The fdatasyncs of the links file are recorded and can be held, to see what waits for them.
import { describe, expect, it, vi } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { createIdentityLinksFile } from '../../../ingest/identity-links-file.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { auth, fixtureLines, startHarness } from './ingest-harness.ts'

const syncs = vi.hoisted(() => ({
  paths: new Map<number, string>(),
  done: [] as string[],
  hold: false,
  held: [] as (() => void)[],
  /** Set: the links file's fdatasyncs fail with EIO. */
  fail: false,
  /** Set: writes to the links file fail with ENOSPC (a full disk). */
  failWrite: false,
}))
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  type Callback = (err: Error | null, fd?: number) => void
  const open = (path: string, ...rest: unknown[]) => {
    const done = rest.pop() as Callback
    ;(fs.open as (...a: unknown[]) => void)(path, ...rest, (err: Error | null, fd?: number) => {
      if (fd !== undefined) syncs.paths.set(fd, String(path))
      done(err, fd)
    })
  }
  const fdatasync = (fd: number, done: (err: Error | null) => void) => {
    const path = syncs.paths.get(fd) ?? String(fd)
    if (syncs.fail && path.endsWith('identity-links.ndjson')) {
      setImmediate(() => done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })))
      return
    }
    const run = () =>
      fs.fdatasync(fd, (err) => {
        syncs.done.push(path)
        done(err)
      })
    if (syncs.hold) syncs.held.push(run)
    else run()
  }
  const writeSync = (fd: number, ...rest: unknown[]) => {
    if (syncs.failWrite && fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('identity-links.ndjson'))
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
    return (fs.writeSync as (...a: unknown[]) => number)(fd, ...rest)
  }
  const mocked = { ...fs, open, fdatasync, writeSync }
  return { ...mocked, default: mocked }
})

// sts:AssumeRole by pods.eks.amazonaws.com issuing ASIA37QFXJP5MQOWRZ6Q to ns-a/sa1/app1 (2024-04-16T09:20:04Z).
const issuePod = fixtureLines('cloudtrail/aws-samples-eks-pod-identity.ndjson')[2]
const issuedKey = 'ASIA37QFXJP5MQOWRZ6Q'
/** The same call issuing the n-th other key: another pod's credentials. */
const issueKey = (n: number) => ({
  ...issuePod,
  eventID: `issue-${n}`,
  responseElements: {
    ...issuePod.responseElements,
    credentials: {
      ...issuePod.responseElements.credentials,
      accessKeyId: `ASIA37QFXJP5MQ${String(n).padStart(6, '0')}`,
    },
  },
})
// A real Stratus record: an ordinary call, which teaches no link.
const stratus = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')[0]

const post = (h: Awaited<ReturnType<typeof startHarness>>, record: unknown) =>
  h.server.inject({ method: 'POST', url: '/v1/cloudtrail', payload: record as object, headers: auth })
/** Runs the syncs held so far; later ones are held too while `hold` stays true. */
const releaseHeld = (hold = false) => {
  syncs.hold = hold
  for (const run of syncs.held.splice(0)) run()
}

describe('a credential link, durable before its request is answered', () => {
  it('answers the request that taught a link only once the links file is synced, and a restart reads it', async () => {
    const h = await startHarness()
    const linksPath = `${h.dataDir}/identity-links.ndjson`
    syncs.done.length = 0
    syncs.hold = true
    let answered = false
    const res = post(h, issuePod).then((r) => {
      answered = true
      return r
    })
    try {
      await waitFor(() => syncs.held.length === 1, { what: 'the links file sync' })
      // The events are on the bus by now; the answer still waits for the link.
      await waitFor(() => h.bus.records(eventsTopic).length === 1, { what: 'the publish' })
      expect(answered).toBe(false)
    } finally {
      releaseHeld()
    }
    expect((await res).statusCode).toBe(202)
    expect(syncs.done).toEqual([linksPath])
    // Read back an hour after the call (load() drops links expired for a day).
    const now = () => Date.parse('2024-04-16T10:20:04Z')
    const reloaded = createIdentityLinksFile(h.dataDir, { log: h.rt.log, now }).load()
    expect(reloaded.map((l) => l.access_key_id)).toEqual([issuedKey])
    await h.ingest.close()
  })

  it('answers a request that taught no link without waiting for a sync, even while another request waits', async () => {
    const h = await startHarness()
    syncs.done.length = 0
    syncs.hold = true
    try {
      const teaching = post(h, issuePod)
      await waitFor(() => syncs.held.length === 1, { what: 'the links file sync' })
      const plain = await post(h, stratus)
      expect(plain.statusCode).toBe(202)
      expect(syncs.held).toHaveLength(1)
      releaseHeld()
      expect((await teaching).statusCode).toBe(202)
    } finally {
      releaseHeld()
    }
    expect(syncs.done).toHaveLength(1)
    await h.ingest.close()
  })

  it('shares one sync among the requests that taught links while the previous sync ran', async () => {
    const h = await startHarness()
    syncs.done.length = 0
    syncs.hold = true
    let answers: Promise<{ statusCode: number }[]>
    try {
      const first = post(h, issueKey(0))
      await waitFor(() => syncs.held.length === 1, { what: 'the first sync' })
      // Five more STS calls arrive while it runs: their links wait for one more sync, together.
      const more = Array.from({ length: 5 }, (_, n) => post(h, issueKey(n + 1)))
      await waitFor(() => h.bus.records(eventsTopic).length === 6, { what: 'the publishes' })
      answers = Promise.all([first, ...more])
      releaseHeld(true)
    } catch (err) {
      releaseHeld()
      throw err
    }
    await waitFor(() => syncs.held.length === 1, { what: 'the shared second sync' })
    releaseHeld()
    expect((await answers).map((r) => r.statusCode)).toEqual([202, 202, 202, 202, 202, 202])
    expect(syncs.done).toHaveLength(2)
    await h.ingest.close()
  })

  it('resolves a batch of a Kafka CloudTrail topic (its offsets committed after) only once its links are synced', async () => {
    const h = await startHarness()
    syncs.done.length = 0
    syncs.hold = true
    let handled = false
    const batch = h.ingest.cloudTrailTopicReader
      .handle('cloudtrail', [{ value: Buffer.from(JSON.stringify(issuePod)), partition: 0, offset: 0 }], 0)
      .then(() => {
        handled = true
      })
    try {
      await waitFor(() => syncs.held.length === 1, { what: 'the links file sync' })
      expect(handled).toBe(false)
    } finally {
      releaseHeld()
    }
    await batch
    expect(syncs.done).toHaveLength(1)
    await h.ingest.close()
  })

  it('refuses the request whose link could not be written, and answers its retry once the link is on disk', async () => {
    const h = await startHarness()
    syncs.failWrite = true
    try {
      const res = await post(h, issuePod)
      expect(res.statusCode).toBe(503)
      // The retry teaches no new link (it is held in memory), but still waits for it to be written.
      expect((await post(h, issuePod)).statusCode).toBe(503)
    } finally {
      syncs.failWrite = false
    }
    expect((await post(h, issuePod)).statusCode).toBe(202)
    const now = () => Date.parse('2024-04-16T10:20:04Z')
    const reloaded = createIdentityLinksFile(h.dataDir, { log: h.rt.log, now }).load()
    expect(reloaded.map((l) => l.access_key_id)).toEqual([issuedKey])
    await h.ingest.close()
  })

  it('refuses the request, to be sent again, when the links file cannot be synced, and says so', async () => {
    const h = await startHarness()
    syncs.fail = true
    try {
      const res = await post(h, issuePod)
      expect(res.statusCode).toBe(503)
      expect(res.json()).toMatchObject({ error: { code: 'BUS_UNAVAILABLE' } })
    } finally {
      syncs.fail = false
    }
    expect(h.rt.logs.filter((l) => l.msg.startsWith('Could not sync the identity links file'))).toEqual([
      expect.objectContaining({ level: 'error', path: `${h.dataDir}/identity-links.ndjson` }),
    ])
    // An ordinary call meanwhile was not held up by it.
    expect((await post(h, stratus)).statusCode).toBe(202)
    await h.ingest.close()
  })
})
