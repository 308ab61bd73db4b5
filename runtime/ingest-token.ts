// There is no unauthenticated write path: without a configured token, one is generated on first
// start, stored (mode 0600) in the data dir and reused on every later start.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NerveError } from './errors.ts'

/** ingest.token's minLength in schemas/config.schema.json. */
const minTokenLength = 16

export type IngestToken = { token: string; source: 'config' | 'stored' | 'generated'; path?: string }

export function resolveIngestToken(configured: string | undefined, dataDir: string): IngestToken {
  if (configured) return { token: configured, source: 'config' }
  const path = join(dataDir, 'ingest-token')
  if (existsSync(path)) {
    // An empty file (a crash between its creation and its write) would make an empty token, which an empty
    // `?token=` matches: a stored token is held to ingest.token's own minimum.
    const token = readFileSync(path, 'utf8').trim()
    if (token.length < minTokenLength)
      throw new NerveError(
        'CONFIG_INVALID',
        `The stored ingest token ${path} holds ${token.length} characters; at least ${minTokenLength} are` +
          ' needed. Delete the file to have a new one generated (senders then need it), or set ingest.token.',
      )
    return { token, source: 'stored', path }
  }
  mkdirSync(dataDir, { recursive: true })
  const token = `nrv_${randomBytes(24).toString('base64url')}`
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' })
  return { token, source: 'generated', path }
}
