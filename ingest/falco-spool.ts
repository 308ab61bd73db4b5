// Falco's alerts are never sent twice: Falcosidekick does not retry (202 is success, anything else is a lost
// alert) and Falco's http_output ignores the status. So when the bus is busy (publishes waiting at their cap,
// or the bus refusing with a retriable error), POST /v1/falco does not answer 429/503: it writes the decoded
// request to a spool on local disk (one file per request, fsynced, renamed into place) and answers 202. A
// drainer hands the spooled requests to the bus in arrival order as soon as it has room, deleting each once
// durable there; while anything is spooled, new requests queue behind it. The spool is bounded by
// ingest.falco_spool_bytes: only when that is spent is a request refused (429 + Retry-After), and /readyz
// says so. Spooled files survive a restart and are drained on the next start. A request is written and read
// back a part at a time (falco-spool-file.ts), so that a spooled 4 MB body never holds the event loop.
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { NerveError } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import { nextTurn } from '../runtime/next-turn.ts'
import type { Decoded } from './decode-events.ts'
import { decodeLegacySpooled, decodeSpooled, encodeSpooled, type Spooled } from './falco-spool-file.ts'
import type { DecodedPublisher } from './publish-decoded.ts'

export type FalcoSpool = {
  /** How long a request waits for the bus before it is spooled instead. */
  patienceMs: number
  /** True while requests wait in the spool: new ones go behind them. */
  holding(): boolean
  /** Durably keeps one decoded request; throws SATURATED when the disk budget is spent. */
  append(component: string, decoded: Decoded, receivedAt: number): Promise<void>
  readiness: ReadinessCheck
  /** Stops draining (what is spooled stays for the next start). */
  close(): Promise<void>
}

/**
 * What a spooled file costs the disk: a file takes whole blocks (4 KiB on ext4, xfs, APFS), and a flood
 * of one-alert requests (under 1 KiB each) would otherwise use several times the budget.
 */
export const diskBytes = (size: number) => Math.max(4096, Math.ceil(size / 4096) * 4096)

/** `<seq>.ndjson`; a file the previous version wrote is `<seq>.json` (one JSON document), still drained. */
const fileName = (seq: number, legacy = false) =>
  `${String(seq).padStart(16, '0')}.${legacy ? 'json' : 'ndjson'}`

/** True when `dir` holds spooled requests: kept across a restart, they are drained even with the spool off. */
export function hasSpooledRequests(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => /^\d{16}\.(nd)?json$/.test(name))
  } catch {
    return false
  }
}

export function createFalcoSpool(
  config: { dir: string; maxBytes: number; patienceMs: number },
  deps: { publisher: DecodedPublisher; log: Logger; metrics: Metrics },
): FalcoSpool {
  const log = deps.log.child({ component: 'falco_spool' })
  /** A budget of 0: the spool is off, and only drains what a previous run spooled (answered 202). */
  const drainOnly = config.maxBytes === 0
  mkdirSync(config.dir, { recursive: true, mode: 0o700 })
  const sizes = new Map<number, number>()
  /** Sequence numbers of files the previous version wrote. */
  const legacy = new Set<number>()
  // Sequence numbers are handed out one by one, so the oldest spooled request is found by walking up
  // from `low` (amortized constant), never by spreading every key into Math.min: a flood spools far
  // more requests than a call has room for arguments.
  let next = 1
  let low = Number.POSITIVE_INFINITY
  for (const name of readdirSync(config.dir)) {
    const match = /^(\d{16})\.(nd)?json$/.exec(name)
    if (match) {
      const seq = Number(match[1])
      if (!match[2]) legacy.add(seq)
      sizes.set(seq, diskBytes(statSync(join(config.dir, name)).size))
      next = Math.max(next, seq + 1)
      low = Math.min(low, seq)
    }
    // A crash before the rename left a partial file that was never answered 202: its sequence number
    // would be handed out again and the exclusive open would fail.
    else if (/^\d{16}\.(nd)?json\.tmp$/.test(name)) unlinkSync(join(config.dir, name))
  }
  let bytes = 0
  for (const size of sizes.values()) bytes += size
  /** Disk budget taken by appends writing their file. */
  let reserved = 0
  /**
   * Sequence numbers of appends still serializing or writing their request. A request takes its number when
   * it arrives, and the drainer waits for a lower one still in here: a large body is serialized over many
   * turns, and a small request arriving after it, written first, must not reach the bus first. New
   * requests go behind these too (holding()).
   */
  const inProgress = new Set<number>()
  let stopped = false
  let draining: Promise<void> | undefined
  let wake: (() => void) | undefined

  const bytesGauge = deps.metrics.gauge(
    'nerve_ingest_falco_spool_bytes',
    'Bytes of Falco requests spooled on disk.',
  )
  const requestsGauge = deps.metrics.gauge(
    'nerve_ingest_falco_spool_requests',
    'Falco requests waiting in the spool.',
  )
  const limitGauge = deps.metrics.gauge('nerve_ingest_falco_spool_limit_bytes', 'The spool disk budget.')
  const spooled = deps.metrics.counter(
    'nerve_ingest_falco_spooled_total',
    'Falco requests spooled while the bus was busy.',
  )
  const refused = deps.metrics.counter(
    'nerve_ingest_falco_spool_refused_total',
    'Falco requests refused because the spool budget was spent.',
  )
  const drained = deps.metrics.counter(
    'nerve_ingest_falco_spool_drained_total',
    'Spooled Falco requests published.',
  )
  const show = () => {
    bytesGauge.set(bytes)
    requestsGauge.set(sizes.size)
  }
  limitGauge.set(config.maxBytes)
  show()
  if (sizes.size > 0 && drainOnly)
    log.warn(
      { requests: sizes.size, bytes },
      'The Falco spool is off (ingest.falco_spool_bytes: 0): draining the requests spooled before the restart.',
    )
  else if (sizes.size > 0)
    log.warn({ requests: sizes.size, bytes }, 'Draining Falco requests spooled before the restart.')

  const hasRoom = () => {
    try {
      deps.publisher.checkCapacity()
      return true
    } catch {
      return false
    }
  }

  /** The oldest request spooled, unless one that arrived before it is still being written. */
  const oldest = (): number | undefined => {
    while (!sizes.has(low) && !inProgress.has(low) && low < next) low++
    return sizes.has(low) ? low : undefined
  }

  const drainOnce = async (seq: number): Promise<boolean> => {
    const path = join(config.dir, fileName(seq, legacy.has(seq)))
    let entry: Spooled
    try {
      entry = legacy.has(seq)
        ? decodeLegacySpooled(await readFile(path, 'utf8'))
        : await decodeSpooled(await readFile(path), nextTurn)
    } catch (err) {
      // Written whole and renamed into place, so only a damaged disk gets here: keep it aside, go on.
      await rename(path, `${path}.unreadable`).catch(() => undefined)
      bytes -= sizes.get(seq) ?? 0
      sizes.delete(seq)
      legacy.delete(seq)
      show()
      log.error({ err, file: `${path}.unreadable` }, 'Set aside a spooled Falco request that cannot be read.')
      return false
    }
    await deps.publisher.publish(entry.component, entry.decoded, entry.receivedAt)
    await unlink(path)
    bytes -= sizes.get(seq) ?? 0
    sizes.delete(seq)
    legacy.delete(seq)
    drained.inc()
    show()
    return true
  }

  const drain = async () => {
    let backoff = 0
    while (!stopped && sizes.size > 0) {
      const seq = oldest()
      if (seq === undefined || !hasRoom()) {
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, 50)
        })
        continue
      }
      try {
        await drainOnce(seq)
        backoff = 0
      } catch (err) {
        backoff = Math.min(30_000, backoff === 0 ? 250 : backoff * 2)
        log.warn(
          { err, retry_in_ms: backoff, requests: sizes.size },
          'Could not publish a spooled Falco request.',
        )
        await new Promise((r) => setTimeout(r, backoff))
      }
    }
    if (sizes.size === 0 && !stopped) log.info({}, 'Falco spool drained.')
  }

  const startDraining = () => {
    wake?.()
    if (!draining && !stopped) {
      draining = drain().finally(() => {
        draining = undefined
        if (sizes.size > 0 && !stopped) startDraining()
      })
    }
  }
  if (sizes.size > 0) startDraining()

  const append = async (component: string, decoded: Decoded, receivedAt: number) => {
    const seq = next++
    inProgress.add(seq)
    low = Math.min(low, seq)
    try {
      await spoolAs(seq, component, decoded, receivedAt)
    } finally {
      // Kept (in sizes) or not (a number never used): either way the drainer may go past it now.
      inProgress.delete(seq)
      wake?.()
    }
    startDraining()
  }

  const spoolAs = async (seq: number, component: string, decoded: Decoded, receivedAt: number) => {
    const parts = await encodeSpooled({ component, receivedAt, decoded }, nextTurn)
    let length = 0
    for (const part of parts) length += part.length
    const cost = diskBytes(length)
    if (bytes + reserved + cost > config.maxBytes) {
      refused.inc()
      throw new NerveError(
        'SATURATED',
        `The bus is busy and the Falco spool is full (${config.maxBytes} bytes); retry shortly.`,
        { retriable: true },
      )
    }
    reserved += cost
    const path = join(config.dir, fileName(seq))
    const temporary = `${path}.tmp`
    try {
      const file = await open(temporary, 'wx', 0o600)
      try {
        // Each part from where the last ended (writeFile on a handle writes at its position, and whole).
        for (const part of parts) await file.writeFile(part)
        await file.sync()
      } finally {
        await file.close()
      }
      await rename(temporary, path)
      const dir = await open(config.dir, 'r')
      try {
        await dir.sync()
      } finally {
        await dir.close()
      }
    } catch (err) {
      await unlink(temporary).catch(() => undefined)
      throw new NerveError('STORAGE_FULL', `Could not spool the request: ${(err as Error).message}`, {
        retriable: true,
        cause: err,
      })
    } finally {
      reserved -= cost
    }
    sizes.set(seq, cost)
    bytes += cost
    spooled.inc()
    show()
  }

  return {
    patienceMs: config.patienceMs,
    holding: () => sizes.size > 0 || inProgress.size > 0,
    append,
    readiness: () => {
      if (drainOnly)
        return sizes.size > 0
          ? { ok: true, detail: `${sizes.size} Falco requests spooled before the restart still draining` }
          : { ok: true }
      const used = Math.round((100 * bytes) / config.maxBytes)
      if (bytes + 64 * 1024 > config.maxBytes) {
        return {
          ok: false,
          detail: `Falco spool full (${bytes} of ${config.maxBytes} bytes): alerts are refused`,
        }
      }
      return sizes.size > 0
        ? { ok: true, detail: `${sizes.size} Falco requests spooled (${used}% of budget)` }
        : { ok: true }
    },
    close: async () => {
      stopped = true
      wake?.()
      await draining
    },
  }
}
