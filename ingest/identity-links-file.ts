// Learned credential links survive a restart: appended to data_dir/identity-links.ndjson as they are
// learned, read back (and compacted) at start. Links whose credentials expired more than a day ago by the
// wall clock are dropped then: CloudTrail arrives minutes late, never a day. The watched agent decides how
// many links are learned (every sts:AssumeRole it signs with a linked key is one), while the resolver keeps
// a bounded table: so the file is also rewritten with the links the resolver still holds whenever it has
// grown to twice their number (at least minCompactLines), and never holds more than that on disk.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../runtime/logger.ts'
import { replaceFileSync } from '../runtime/replace-file.ts'
import type { IdentityLink } from '../schemas/types.ts'

export type IdentityLinksFile = {
  load(): IdentityLink[]
  /** Appends `link`; `live` gives the links still held, asked only when the file is due for compaction. */
  append(link: IdentityLink, live: () => readonly IdentityLink[]): void
  path: string
}

const keepAfterExpiryMs = 24 * 3_600_000

export function createIdentityLinksFile(
  dataDir: string,
  deps: { log: Logger; now: () => number; minCompactLines?: number },
): IdentityLinksFile {
  const path = join(dataDir, 'identity-links.ndjson')
  const minCompactLines = deps.minCompactLines ?? 10_000
  let lines = 0
  let compactAt = minCompactLines
  // Durably (replace-file.ts): a crash during a rewrite must not lose the links the file held.
  const rewrite = (links: readonly IdentityLink[]) => {
    replaceFileSync(path, links.map((l) => `${JSON.stringify(l)}\n`).join(''))
    lines = links.length
    compactAt = Math.max(minCompactLines, 2 * links.length)
  }
  return {
    path,
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
      rewrite(links)
      return links
    },
    append: (link, live) => {
      mkdirSync(dataDir, { recursive: true })
      appendFileSync(path, `${JSON.stringify(link)}\n`)
      if (++lines > compactAt) rewrite(live())
    },
  }
}
