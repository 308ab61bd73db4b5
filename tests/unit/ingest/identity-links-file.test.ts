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
// renamed. Only recorded: every call does what node:fs does.
const fsCalls = vi.hoisted(() => ({ log: [] as string[], paths: new Map<number, string>() }))
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  const openSync = (path: string, ...rest: unknown[]) => {
    const fd = (fs.openSync as (...a: unknown[]) => number)(path, ...rest)
    fsCalls.paths.set(fd, String(path))
    return fd
  }
  const fsyncSync = (fd: number) => {
    fsCalls.log.push(`fsync ${fsCalls.paths.get(fd)}`)
    fs.fsyncSync(fd)
  }
  const renameSync = (from: string, to: string) => {
    fsCalls.log.push(`rename ${from} ${to}`)
    fs.renameSync(from, to)
  }
  const mocked = { ...fs, openSync, fsyncSync, renameSync }
  return { ...mocked, default: mocked }
})

const issued = issuedLink
const chained = chainedLink

describe('the identity links file', () => {
  it('stays within twice the links still held, whatever the number learned', () => {
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
    }
    const lines = readFileSync(file.path, 'utf8').trim().split('\n')
    expect(lines.length).toBeLessThanOrEqual(101)
    const reloaded = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now }).load()
    expect(reloaded).toContainEqual(issued)
    expect(reloaded).toContainEqual(chained(4_999))
    expect(reloaded).not.toContainEqual(chained(0))
  })
  it('rewrites the file durably: the new file is on disk before it replaces the old, and the rename after', () => {
    const dataDir = tempDir('nerve-links')
    const now = () => issued.issued_at
    const file = createIdentityLinksFile(dataDir, { log: createTestRuntime().log, now, minCompactLines: 2 })
    const held = [issued]
    file.append(issued, () => held)
    fsCalls.log.length = 0
    for (let n = 0; n < 3; n++) file.append(chained(n), () => held)
    expect(fsCalls.log).toEqual([
      `fsync ${file.path}.tmp`,
      `rename ${file.path}.tmp ${file.path}`,
      `fsync ${dirname(file.path)}`,
    ])
    // The rewrite kept the link still held; the append after it went to the new file.
    const lines = readFileSync(file.path, 'utf8').trim().split('\n')
    expect(lines.map((l) => JSON.parse(l))).toEqual([issued, chained(2)])
  })
})
