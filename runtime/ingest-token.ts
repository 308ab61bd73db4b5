// There is no unauthenticated write path: without a configured token, one is generated on first
// start, stored (mode 0600) in the data dir and reused on every later start.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export type IngestToken = { token: string; source: 'config' | 'stored' | 'generated'; path?: string }

export function resolveIngestToken(configured: string | undefined, dataDir: string): IngestToken {
  if (configured) return { token: configured, source: 'config' }
  const path = join(dataDir, 'ingest-token')
  if (existsSync(path)) return { token: readFileSync(path, 'utf8').trim(), source: 'stored', path }
  mkdirSync(dataDir, { recursive: true })
  const token = `nrv_${randomBytes(24).toString('base64url')}`
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' })
  return { token, source: 'generated', path }
}
