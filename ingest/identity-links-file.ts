// Learned credential links survive a restart: appended to data_dir/identity-links.ndjson as they are
// learned, read back (and compacted) at start. Links whose credentials expired more than a day ago by the
// wall clock are dropped then: CloudTrail arrives minutes late, never a day. The watched agent decides how
// many links are learned (every sts:AssumeRole it signs with a linked key is one), while the resolver keeps
// a bounded table: so the file is also rewritten with the links the resolver still holds whenever it has
// grown to twice their number (at least minCompactLines), and never holds more than that on disk.
// That rewrite runs while ingest serves, over up to the whole table (200,000 links, tens of MB): it is
// written in parts across turns of the event loop, so /healthz and the receivers are not held up. Links
// learned meanwhile are appended to the old file (a crash before the rename keeps them there) and, in the
// turn of the rename, after the rewritten links in the new one.
// An append that fails part-way (a full disk) is cut off again, so that the next link's line stays whole.
// A link that could not be appended stays owed (the resolver already holds it, so a retried request teaches
// it no more): it is appended again before the next link and by durable(), which rejects until it is.
// A link is durable once durable() resolves: one fdatasync on libuv's threads, shared by every caller that
// asked while the previous one ran (a group commit, as the embedded bus's), so a request that taught a link
// is answered only after it is on disk. While a compaction runs, the links learned meanwhile are durable
// only once the new file (with them after the rewritten links) is: durable() then waits for its end.
import {
  close,
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  open,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Logger } from '../runtime/logger.ts'
import { replaceFileInParts, replaceFileSync } from '../runtime/replace-file.ts'
import type { IdentityLink } from '../schemas/types.ts'

export type IdentityLinksFile = {
  load(): IdentityLink[]
  /**
   * Appends `link`; `live` gives the links still held, asked only when the file is due for compaction,
   * which then runs in the background (settled() says when it is over).
   */
  append(link: IdentityLink, live: () => readonly IdentityLink[]): void
  /**
   * Resolves once every link appended before the call is on disk (one fdatasync, shared with the callers
   * that asked meanwhile), appending first the links owed; rejects with what the system says.
   */
  durable(): Promise<void>
  /** Links learned but not yet appended (a full disk): requests wait for durable() until they are. */
  owed(): boolean
  /** Resolves once no compaction is running (ingest's close waits for it). */
  settled(): Promise<void>
  path: string
}

const keepAfterExpiryMs = 24 * 3_600_000
/** Links written per turn of the event loop while compacting: ~250 KB of JSON, about a millisecond. */
const linksPerPart = 1_000
/** Links owed at most (the watched agent decides how many are learned); the oldest are given up past it. */
const maxOwed = 10_000

const openAsync = promisify(open)
const fdatasyncAsync = promisify(fdatasync)
const closeAsync = promisify(close)

const lineOf = (link: IdentityLink) => `${JSON.stringify(link)}\n`

function* partsOf(links: readonly IdentityLink[]): Generator<string> {
  for (let at = 0; at < links.length; at += linksPerPart) {
    let part = ''
    for (const link of links.slice(at, at + linksPerPart)) part += lineOf(link)
    yield part
  }
}

export function createIdentityLinksFile(
  dataDir: string,
  deps: { log: Logger; now: () => number; minCompactLines?: number },
): IdentityLinksFile {
  const path = join(dataDir, 'identity-links.ndjson')
  const minCompactLines = deps.minCompactLines ?? 10_000
  let lines = 0
  let compactAt = minCompactLines
  /** The compaction running, and the links learned since it took its snapshot of the table. */
  let compacting: { done: Promise<void>; learned: IdentityLink[] } | undefined
  /** Set when a failed append could not be cut off: the next one starts on a new line. */
  let torn = false
  /** Links whose append failed: appended again, before the next link and by durable(). */
  let owed: IdentityLink[] = []
  /** Appends `links` whole or not at all (as far as the system lets it); throws what the system says. */
  const appendLines = (links: readonly IdentityLink[]) => {
    const bytes = Buffer.from((torn ? '\n' : '') + links.map(lineOf).join(''))
    const fd = openSync(path, 'a', 0o600)
    try {
      const size = fstatSync(fd).size
      try {
        for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at)
        torn = false
      } catch (err) {
        try {
          ftruncateSync(fd, size)
        } catch {
          torn = true
        }
        throw err
      }
    } finally {
      closeSync(fd)
    }
  }
  // Names the keys (the first ten), ids an operator can look up in CloudTrail; never the link's whole record.
  const notSaved = (err: unknown, links: readonly IdentityLink[]) =>
    deps.log.error(
      { err, path, count: links.length, access_key_ids: links.slice(0, 10).map((l) => l.access_key_id) },
      'Could not save learned identity links: after a restart, calls with these keys are not joined to their workload.',
    )
  const owe = (links: readonly IdentityLink[]) => {
    owed.push(...links)
    if (owed.length > maxOwed) owed.splice(0, owed.length - maxOwed)
  }
  /** Appends `links` after the links owed; throws what the system says, and then owes `links` too. */
  const appendOwing = (links: readonly IdentityLink[]): void => {
    const writing = owed.length === 0 ? links : [...owed, ...links]
    try {
      mkdirSync(dataDir, { recursive: true })
      appendLines(writing)
    } catch (err) {
      if (links.length > 0) notSaved(err, links)
      owe(links)
      throw err
    }
    owed = []
    lines += writing.length
    // Appended to the old file while a compaction runs: they follow the snapshot in the new one too.
    compacting?.learned.push(...writing)
  }
  const compacted = (held: number) => {
    lines = held
    compactAt = Math.max(minCompactLines, 2 * held)
  }

  // Durably (replace-file.ts): a crash during a rewrite must not lose the links the file held.
  const compact = (links: readonly IdentityLink[]) => {
    const learned: IdentityLink[] = []
    const done = replaceFileInParts(path, partsOf(links), () => {
      // The new file holds the snapshot: the links learned since follow it, as they followed in the old.
      try {
        if (learned.length > 0) appendLines(learned)
        compacted(links.length + learned.length)
      } catch (err) {
        // Not in the new file: owed, so that durable() rejects until they are appended again.
        notSaved(err, learned)
        owe(learned)
        compacted(links.length)
      }
    })
      .catch((err: unknown) => {
        // The old file is whole and holds every link; it is compacted again once it has grown as much.
        compactAt = lines + Math.max(minCompactLines, links.length)
        deps.log.error(
          { err, path },
          'Could not compact the identity links file; it keeps every link and grows until a compaction succeeds.',
        )
      })
      .finally(() => {
        compacting = undefined
      })
    compacting = { done, learned }
  }

  const settled = async () => {
    while (compacting) await compacting.done
  }
  const syncFile = async () => {
    await settled()
    try {
      if (owed.length > 0) appendOwing([])
      const fd = await openAsync(path, constants.O_RDONLY)
      try {
        await fdatasyncAsync(fd)
      } finally {
        await closeAsync(fd)
      }
    } catch (err) {
      deps.log.error(
        { err, path },
        'Could not sync the identity links file (or append the links it owes); the requests that taught links are refused, to be sent again.',
      )
      throw err
    }
  }
  /** The sync running, and the one that starts when it ends (for the callers that came meanwhile). */
  let syncing: Promise<void> | undefined
  let nextSync: Promise<void> | undefined
  const startSync = (): Promise<void> => {
    const sync = syncFile()
    syncing = sync
    const clear = () => {
      if (syncing === sync) syncing = undefined
    }
    sync.then(clear, clear)
    return sync
  }
  const durable = (): Promise<void> => {
    if (!syncing) return startSync()
    nextSync ??= syncing
      .catch(() => {})
      .then(() => {
        nextSync = undefined
        return startSync()
      })
    return nextSync
  }

  return {
    load: () => {
      if (!existsSync(path)) return []
      const cutoff = deps.now() - keepAfterExpiryMs
      const links: IdentityLink[] = []
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (line.trim() === '') continue
        try {
          const link = JSON.parse(line) as IdentityLink
          if (typeof link.access_key_id === 'string' && link.expires >= cutoff) links.push(link)
        } catch {
          deps.log.warn({ path }, 'Skipped a damaged line in the identity links file.')
        }
      }
      // At start, before ingest serves: in one go.
      replaceFileSync(path, links.map(lineOf).join(''))
      compacted(links.length)
      return links
    },
    append: (link, live) => {
      try {
        appendOwing([link])
      } catch {
        return
      }
      if (!compacting && lines > compactAt) compact(live())
    },
    durable,
    owed: () => owed.length > 0,
    settled,
    path,
  }
}
