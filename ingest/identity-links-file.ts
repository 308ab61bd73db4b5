// Learned credential links survive a restart: appended to data_dir/identity-links.ndjson as they are
// learned, read back (and compacted) at start. Links whose credentials expired more than a day ago by the
// wall clock are dropped then: CloudTrail arrives minutes late, never a day.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../runtime/logger.ts'
import type { IdentityLink } from '../schemas/types.ts'

export type IdentityLinksFile = { load(): IdentityLink[]; append(link: IdentityLink): void; path: string }

const keepAfterExpiryMs = 24 * 3_600_000

export function createIdentityLinksFile(
  dataDir: string,
  deps: { log: Logger; now: () => number },
): IdentityLinksFile {
  const path = join(dataDir, 'identity-links.ndjson')
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
      const tmp = `${path}.tmp`
      writeFileSync(tmp, links.map((l) => `${JSON.stringify(l)}\n`).join(''))
      renameSync(tmp, path)
      return links
    },
    append: (link) => {
      mkdirSync(dataDir, { recursive: true })
      appendFileSync(path, `${JSON.stringify(link)}\n`)
    },
  }
}
