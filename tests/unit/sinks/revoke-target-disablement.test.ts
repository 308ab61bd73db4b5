// A revoke webhook target that answered 410 stays disabled across restarts until what names it or proves
// nerve to it changes (its URL, secrets, TLS files), and the outbox that remembers it holds nothing that
// tests a guess of the URL's access token without the data dir's key.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { WebhookTargetConfig } from '../../../schemas/types.ts'
import { openRevokeOutbox } from '../../../sinks/revoke-outbox.ts'
import { createRevokeDispatcher } from '../../../sinks/revoke-webhook-dispatcher.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { createMemoryBus } from './memory-bus.ts'
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts'

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const defaults = loadConfig()
const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})

/** A dispatcher on `dataDir` with one target, `entry` over the loaded defaults (timeout, concurrency). */
function start(dataDir: string, entry: Partial<WebhookTargetConfig> & { url: string }) {
  const rt = createTestRuntime()
  const webhook: WebhookTargetConfig = { timeout: 10_000, concurrency: 4, ...entry }
  const d = createRevokeDispatcher(
    { data_dir: dataDir, agents: [], revoke: { ...defaults.revoke, webhooks: [webhook] } },
    { bus: createMemoryBus(), log: rt.log, metrics: rt.metrics, now: () => Date.UTC(2026, 11, 7) },
  )
  open.push(d)
  return { d, rt, webhook }
}

/** A receiver that answers 410, and a dispatcher that sent it a revoke and so disabled it. */
async function disabledBy410(entry: Partial<WebhookTargetConfig> = {}) {
  const gone: WebhookReceiver = await startWebhookReceiver(() => ({ status: 410 }))
  open.push(gone)
  const dataDir = tempDir('nerve-disablement')
  const first = start(dataDir, { secret, url: `${gone.url}?access_token=tok-4821`, ...entry })
  first.d.startDelivering()
  await first.d.handle([makeCorrelation(0)])
  await waitFor(() => first.d.readiness().ok === false, { what: 'the target disabled' })
  await first.d.close()
  return { dataDir, label: gone.url, url: `${gone.url}?access_token=tok-4821`, webhook: first.webhook }
}

const storedEntry = (dataDir: string) => {
  const db = new Database(join(dataDir, 'revoke-outbox.sqlite'), { readonly: true })
  try {
    return (db.prepare('SELECT entry FROM targets').get() as { entry: string | null } | undefined)?.entry
  } finally {
    db.close()
  }
}

/** The previous version's fingerprint: SHA-256 of every field of the entry, in key order. */
const plainSha256 = (entry: WebhookTargetConfig) =>
  createHash('sha256')
    .update(JSON.stringify(Object.entries(entry).sort(([a], [b]) => (a < b ? -1 : 1))))
    .digest('base64url')

describe('a target disabled by a 410', () => {
  it('stays disabled when only timeout or concurrency change, as a default a later version adds would', async () => {
    const { dataDir, url, label } = await disabledBy410()
    const later = start(dataDir, { secret, url, timeout: 30_000, concurrency: 1 })
    expect(later.d.readiness()).toEqual({ ok: false, detail: `${label}: target_gone` })
  })

  it('is enabled again when its URL (its query too) or its secrets change', async () => {
    for (const change of [
      { url: 'rotated-token' },
      { secret: `whsec_${Buffer.from('the-next-secret-24-bytes').toString('base64')}` },
      { secrets: [secret] },
    ]) {
      const { dataDir, url, label } = await disabledBy410()
      const entry = { secret, url, ...change }
      if (change.url) entry.url = `${label}?access_token=${change.url}`
      const later = start(dataDir, entry)
      expect(later.d.readiness()).toEqual({ ok: true })
      expect(later.rt.logs.some((l) => l.msg.includes('enabled again'))).toBe(true)
    }
  })

  it("leaves nothing in the outbox that tests a guess of the URL's token without the data dir's key", async () => {
    const { dataDir, label, webhook } = await disabledBy410()
    const fingerprint = storedEntry(dataDir)
    expect(fingerprint).toEqual(expect.any(String))
    // Who holds a copy of the outbox tries every 4-digit token against it, as against the previous version's.
    const guesses = Array.from({ length: 10_000 }, (_, n) => `${label}?access_token=tok-${n}`)
    const hit = guesses.find((url) => plainSha256({ ...webhook, url }) === fingerprint)
    expect(hit).toBeUndefined()
    // The key is a file of its own beside the outbox, owner-only, and not in the outbox's file.
    const key = readFileSync(join(dataDir, 'revoke-target-key'))
    expect(key.length).toBe(32)
    expect(statSync(join(dataDir, 'revoke-target-key')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(dataDir, 'revoke-outbox.sqlite')).includes(key)).toBe(false)
  })

  it('keeps a target the previous version disabled while its entry is unchanged, and replaces its plain hash', async () => {
    const receiver = await startWebhookReceiver()
    open.push(receiver)
    const dataDir = tempDir('nerve-disablement')
    const url = `${receiver.url}?access_token=tok-4821`
    const entry: WebhookTargetConfig = { url, secret, timeout: 10_000, concurrency: 4 }
    const outbox = openRevokeOutbox(dataDir)
    outbox.disableTarget(receiver.url, 5, 'target_gone', plainSha256(entry))
    await outbox.close()

    const same = start(dataDir, entry)
    expect(same.d.readiness()).toEqual({ ok: false, detail: `${receiver.url}: target_gone` })
    await same.d.close()
    expect(storedEntry(dataDir)).not.toBe(plainSha256(entry))
    expect(start(dataDir, entry).d.readiness().ok).toBe(false)
  })

  it('enables a target the previous version disabled once its entry changed since', async () => {
    const receiver = await startWebhookReceiver()
    open.push(receiver)
    const dataDir = tempDir('nerve-disablement')
    const entry: WebhookTargetConfig = { url: receiver.url, secret, timeout: 10_000, concurrency: 4 }
    const outbox = openRevokeOutbox(dataDir)
    outbox.disableTarget(
      receiver.url,
      5,
      'target_gone',
      plainSha256({ ...entry, url: `${receiver.url}?t=1` }),
    )
    await outbox.close()

    const changed = start(dataDir, entry)
    expect(changed.d.readiness()).toEqual({ ok: true })
    expect(storedEntry(dataDir)).toBeUndefined()
  })

  it("stays disabled, and says why, when the data dir's key was replaced since", async () => {
    const { dataDir, url, label } = await disabledBy410()
    rmSync(join(dataDir, 'revoke-target-key'))
    const later = start(dataDir, { secret, url })
    expect(later.d.readiness()).toEqual({ ok: false, detail: `${label}: target_gone` })
    expect(later.rt.logs).toContainEqual(
      expect.objectContaining({ level: 'warn', target: label, msg: expect.stringMatching(/key/) }),
    )
  })

  it('makes a new key in place of an empty key file (a crash between its creation and its write)', () => {
    const dataDir = tempDir('nerve-disablement')
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(join(dataDir, 'revoke-target-key'), '')
    const outbox = openRevokeOutbox(dataDir)
    open.push(outbox)
    expect(readFileSync(join(dataDir, 'revoke-target-key')).length).toBe(32)
  })
})
