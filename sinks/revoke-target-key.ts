// The key of the revoke outbox's target fingerprints (target-fingerprint.ts): 32 random bytes made on the
// first start, kept in the data dir beside the outbox (mode 0600), never in it. Lost or replaced, the
// fingerprints made under the old key are told apart by its id, and the targets they disabled stay disabled.
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NerveError } from '../runtime/errors.ts'

const keyBytes = 32

export function readRevokeTargetKey(dataDir: string): Buffer {
  const path = join(dataDir, 'revoke-target-key')
  if (!existsSync(path)) {
    const key = randomBytes(keyBytes)
    writeFileSync(path, key, { mode: 0o600, flag: 'wx' })
    return key
  }
  // An empty file (a crash between its creation and its write) would key every fingerprint with nothing.
  const key = readFileSync(path)
  if (key.length !== keyBytes)
    throw new NerveError(
      'CONFIG_INVALID',
      `The revoke target key ${path} holds ${key.length} bytes, not ${keyBytes}. Delete it to have a new one` +
        ' made: the targets a 410 disabled then stay disabled until their config entry changes.',
    )
  return key
}
