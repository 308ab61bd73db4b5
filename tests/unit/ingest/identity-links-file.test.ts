// The links file on disk against a workload that chains roles in a loop: the resolver keeps a bounded
// table, and the file may not grow past it without end (each chained sts:AssumeRole is one line).
import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createIdentityLinksFile } from '../../../ingest/identity-links-file.ts'
import type { IdentityLink } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { chainedLink, issuedLink } from './irsa-links.ts'

// What the file system was asked, in order: the paths fsynced (by the path their fd was opened with) and
// renamed. Every call does what node:fs does, unless a fault is armed: `fullDisk` writes to the links file
// stop half-way with ENOSPC (a disk that fills mid-line), `tempFails` opens of its compaction's temp file
// fail with ENOSPC.
const fsCalls = vi.hoisted(() => ({
  log: [] as string[],
  paths: new Map<number, string>(),
  fullDisk: 0,
  tempFails: false,
  truncateFails: false,
}))
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  type Callback = (err: Error | null, fd?: number) => void
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
  const isLinks = (path: unknown) => String(path).endsWith('identity-links.ndjson')
  const openSync = (path: string, ...rest: unknown[]) => {
    const fd = (fs.openSync as (...a: unknown[]) => number)(path, ...rest)
    fsCalls.paths.set(fd, String(path))
    return fd
  }
  const open = (path: string, ...rest: unknown[]) => {
    const done = rest.pop() as Callback
    if (fsCalls.tempFails && String(path).endsWith('identity-links.ndjson.tmp')) {
      fsCalls.log.push(`open ${path}`)
      setImmediate(() => done(enospc()))
      return
    }
    ;(fs.open as (...a: unknown[]) => void)(path, ...rest, (err: Error | null, fd?: number) => {
      if (fd !== undefined) fsCalls.paths.set(fd, String(path))
      done(err, fd)
    })
  }
  // Half the bytes reach the file, then the disk is full.
  const appendFileSync = (path: string, data: string, ...rest: unknown[]) => {
    if (fsCalls.fullDisk > 0 && isLinks(path)) {
      fsCalls.fullDisk--
      fs.appendFileSync(path, data.slice(0, data.length >> 1))
      throw enospc()
    }
    return (fs.appendFileSync as (...a: unknown[]) => void)(path, data, ...rest)
  }
  const writeSync = (fd: number, data: string | Buffer, ...rest: unknown[]) => {
    if (fsCalls.fullDisk > 0 && isLinks(fsCalls.paths.get(fd))) {
      fsCalls.fullDisk--
      const half =
        typeof data === 'string'
          ? Buffer.from(data.slice(0, data.length >> 1))
          : data.subarray(0, data.length >> 1)
      fs.writeSync(fd, half)
      throw enospc()
    }
    return (fs.writeSync as (...a: unknown[]) => number)(fd, data, ...rest)
  }
  const ftruncateSync = (fd: number, len?: number) => {
    if (fsCalls.truncateFails) throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' })
    fs.ftruncateSync(fd, len)
  }
  const fsyncSync = (fd: number) => {
    fsCalls.log.push(`fsync ${fsCalls.paths.get(fd)}`)
    fs.fsyncSync(fd)
  }
  const fsync = (fd: number, done: Callback) => {
    fsCalls.log.push(`fsync ${fsCalls.paths.get(fd)}`)
    fs.fsync(fd, done)
  }
  const fdatasync = (fd: number, done: Callback) => {
    fsCalls.log.push(`fdatasync ${fsCalls.paths.get(fd)}`)
    fs.fdatasync(fd, done)
  }
  const renameSync = (from: string, to: string) => {
    fsCalls.log.push(`rename ${from} ${to}`)
    fs.renameSync(from, to)
  }
  const mocked = {
    ...fs,
    openSync,
    open,
    appendFileSync,
    writeSync,
    ftruncateSync,
    fsyncSync,
    fsync,
    fdatasync,
    renameSync,
  }
  return { ...mocked, default: mocked }
})

const issued = issuedLink
const chained = chainedLink

describe('the identity links file', () => {
  it('stays within twice the links still held, whatever the number learned', async () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const file = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now, minCompactLines: 100 })
    const held: IdentityLink[] = [issued]
    file.append(issued, () => held)
    for (let n = 0; n < 5_000; n++) {
      const link = chained(n)
      held.push(link)
      if (held.length > 11) held.splice(1, 1) // the resolver keeps its 10 newest chained links
      file.append(link, () => held)
      // Ingest learns the next link in a later request, after the compaction this one started (if any).
      await file.settled()
    }
    const lines = readFileSync(file.path, 'utf8').trim().split('\n')
    expect(lines.length).toBeLessThanOrEqual(101)
    const reloaded = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now }).load()
    expect(reloaded).toContainEqual(issued)
    expect(reloaded).toContainEqual(chained(4_999))
    expect(reloaded).not.toContainEqual(chained(0))
  })
  it('rewrites the file durably: the new file is on disk before it replaces the old, and the rename after', async () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const file = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now, minCompactLines: 2 })
    const held = [issued]
    file.append(issued, () => held)
    fsCalls.log.length = 0
    for (let n = 0; n < 3; n++) file.append(chained(n), () => held)
    await file.settled()
    expect(fsCalls.log).toEqual([
      `fsync ${file.path}.tmp`,
      `rename ${file.path}.tmp ${file.path}`,
      `fsync ${dirname(file.path)}`,
    ])
    // The rewrite kept the link still held, and the link learned while it ran (appended to the old file,
    // then after the rewritten links in the new one).
    const lines = readFileSync(file.path, 'utf8').trim().split('\n')
    expect(lines.map((l) => JSON.parse(l))).toEqual([issued, chained(2)])
  })

  it('compacts across turns of the event loop, and a link learned meanwhile survives a restart', async () => {
    // A table of 5,000 links (IRSA keys of 50 service accounts, as a busy cluster's), compacted once the
    // file passes 5,000 lines; ingest goes on learning while it runs.
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const log = createTestRuntime().log
    const file = createIdentityLinksFile(dataDir, { log, now, minCompactLines: 5_000 })
    const held: IdentityLink[] = Array.from({ length: 5_000 }, (_, n) => ({
      ...issued,
      access_key_id: `ASIAQNNXHEBB${String(n).padStart(8, '0')}`,
      k8s_service_account: `svc-${n % 50}`,
    }))
    for (const link of held) file.append(link, () => held)
    const learned = Array.from({ length: 5 }, (_, n) => chained(10_000 + n))
    const lineCount = () => readFileSync(file.path, 'utf8').trim().split('\n').length
    file.append(held[0] as IdentityLink, () => held) // line 5,001: the compaction starts
    // The append that started it returned before the file was rewritten: the old file, whole, is there.
    expect(lineCount()).toBe(5_001)
    file.append(learned[0] as IdentityLink, () => held)
    for (const link of learned.slice(1)) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      file.append(link, () => [...held, ...learned])
    }
    await file.settled()
    const onDisk = readFileSync(file.path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(onDisk).toEqual([...held, ...learned])
    // A restart reads every link: those the compaction wrote and those learned while it ran.
    const reloaded = createIdentityLinksFile(dataDir, { log, now }).load()
    expect(reloaded).toEqual([...held, ...learned])
  })

  it('keeps the next link whole when the disk fills in the middle of a line, and appends the lost one with it', () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const rt = createTestRuntime()
    const file = createIdentityLinksFile(dataDir, { log: rt.log, now })
    file.append(issued, () => [issued])
    fsCalls.fullDisk = 1
    try {
      file.append(chained(1), () => [issued])
    } catch {}
    // Space is freed: the next link is learned and appended.
    file.append(chained(2), () => [issued])
    const reloaded = createIdentityLinksFile(dataDir, { log: rt.log, now }).load()
    expect(reloaded).toEqual([issued, chained(1), chained(2)])
    expect(rt.logs.filter((l) => l.level === 'error')).toEqual([
      expect.objectContaining({ access_key_ids: [chained(1).access_key_id], count: 1, path: file.path }),
    ])
    expect(rt.logs.filter((l) => l.msg.startsWith('Skipped a damaged line'))).toEqual([])
  })

  it('starts the next link on a new line when the half line cannot be cut off either', () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const rt = createTestRuntime()
    const file = createIdentityLinksFile(dataDir, { log: rt.log, now })
    file.append(issued, () => [issued])
    fsCalls.fullDisk = 1
    fsCalls.truncateFails = true
    try {
      file.append(chained(1), () => [issued])
    } finally {
      fsCalls.truncateFails = false
    }
    file.append(chained(2), () => [issued])
    file.append(chained(3), () => [issued])
    const reloaded = createIdentityLinksFile(dataDir, { log: rt.log, now }).load()
    expect(reloaded).toEqual([issued, chained(1), chained(2), chained(3)])
    // The half line is skipped (and said), the links around it kept.
    expect(rt.logs.filter((l) => l.msg.startsWith('Skipped a damaged line'))).toHaveLength(1)
  })

  it('after a failed compaction, tries again only once the file has grown by as much, and logs each failure once', async () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const rt = createTestRuntime()
    const file = createIdentityLinksFile(dataDir, { log: rt.log, now, minCompactLines: 100 })
    const held = [issued]
    const tempOpens = () => fsCalls.log.filter((l) => l === `open ${file.path}.tmp`).length
    fsCalls.log.length = 0
    fsCalls.tempFails = true
    try {
      // Line 101 starts a compaction, which fails; the next 100 links do not start another.
      for (let n = 0; n < 201; n++) {
        file.append(chained(n), () => held)
        await file.settled()
      }
      expect(tempOpens()).toBe(1)
      const failures = rt.logs.filter((l) => l.msg.startsWith('Could not compact'))
      expect(failures).toHaveLength(1)
      // Grown by another compaction's worth: one more try, which fails too.
      file.append(chained(201), () => held)
      await file.settled()
      expect(tempOpens()).toBe(2)
    } finally {
      fsCalls.tempFails = false
    }
    // The disk has room again: the next try succeeds and the file holds the links held.
    for (let n = 202; n < 303; n++) {
      file.append(chained(n), () => held)
      await file.settled()
    }
    expect(readFileSync(file.path, 'utf8').trim().split('\n').length).toBeLessThan(100)
  })

  it('makes a link learned during a compaction durable in the new file: durable() waits for the rename', async () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const file = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now, minCompactLines: 2 })
    const held = [issued]
    file.append(issued, () => held)
    file.append(chained(0), () => held)
    fsCalls.log.length = 0
    file.append(chained(1), () => held) // line 3: the compaction starts
    file.append(chained(2), () => held) // learned while it runs
    await file.durable()
    // The sync that makes chained(2) durable is of the new file, once it holds it (after the rename).
    expect(fsCalls.log).toEqual([
      `fsync ${file.path}.tmp`,
      `rename ${file.path}.tmp ${file.path}`,
      `fsync ${dirname(file.path)}`,
      `fdatasync ${file.path}`,
    ])
    expect(
      readFileSync(file.path, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([issued, chained(2)])
  })

  it('rejects durable() while a link could not be written, and writes it with the next durable()', async () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const file = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now })
    file.append(issued, () => [issued])
    fsCalls.fullDisk = 2
    file.append(chained(1), () => [issued])
    expect(file.owed()).toBe(true)
    // Still full: the link is appended again, and fails again.
    await expect(file.durable()).rejects.toMatchObject({ code: 'ENOSPC' })
    await file.durable()
    expect(file.owed()).toBe(false)
    expect(createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now }).load()).toEqual([
      issued,
      chained(1),
    ])
  })

  it('owes a link learned during a compaction that could not follow it into the new file', async () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const file = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now, minCompactLines: 2 })
    const held = [issued]
    file.append(issued, () => held)
    file.append(chained(0), () => held)
    file.append(chained(1), () => held) // line 3: the compaction starts
    file.append(chained(2), () => held) // learned while it runs, in the old file
    fsCalls.fullDisk = 1 // its append after the rename fails
    await file.settled()
    expect(file.owed()).toBe(true)
    await file.durable()
    expect(createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now }).load()).toEqual([
      issued,
      chained(2),
    ])
  })
})
