// The shape shared by POST /v1/falco and POST /v1/cloudtrail: body → items → decoded events → bus, then
// the answer: 202 {"accepted":N,…} once durable; 400 naming each invalid item (index, path, reason)
// while the valid ones of the same request are still accepted.
import { isNerveError } from '../runtime/errors.ts'
import type { Route, RouteRequest, RouteResponse } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ComponentTelemetry, Metrics } from '../runtime/metrics.ts'
import type { HttpConfig } from '../schemas/types.ts'
import type { Decoded, EventDecoder, ItemKind } from './decode-events.ts'
import { decodeInParts } from './decode-in-parts.ts'
import type { FalcoSpool } from './falco-spool.ts'
import type { FoldOverBudget } from './fold-over-budget.ts'
import type { DecodedPublisher } from './publish-decoded.ts'
import { readRequestBody } from './read-request-body.ts'

export type ReceiverDeps = {
  decoder: EventDecoder
  publisher: DecodedPublisher
  log: Logger
  metrics: Metrics
}

export type ItemsRouteSpec = {
  url: string
  component: string
  kind: ItemKind
  /** Said when a text/plain body is not JSON (Falco without json_output). */
  plainTextHint?: string
  /** Where requests go while the bus is busy, instead of a 429/503 (Falco: its senders never retry). */
  spool?: FalcoSpool
  /** The per-agent edge budget: alerts past it are folded before the bus (and the spool). */
  budget?: FoldOverBudget
}

const maxDetails = 100

export function createItemsRoute(spec: ItemsRouteSpec, config: HttpConfig, deps: ReceiverDeps): Route {
  const telemetry = deps.metrics.component(spec.component)
  const log = deps.log.child({ component: spec.component })
  return {
    method: 'POST',
    url: spec.url,
    auth: 'ingest',
    source: spec.kind === 'falco' ? 'falco' : 'cloudtrail',
    handle: async (req) => {
      if (!spec.spool) deps.publisher.checkCapacity()
      let decoded: Decoded
      try {
        const text = await readRequestBody(req, config.decompressed_limit_bytes)
        // A large body is decoded a part at a time, giving the event loop back between parts. CloudTrail
        // records keep their texts for the bus (event-record-json.ts); Falco alerts, edge events, are
        // serialized whole.
        decoded = await decodeInParts(
          deps.decoder,
          spec.kind,
          text,
          { maxItems: config.max_items, maxDepth: config.max_depth },
          {
            receivedAt: req.receivedAt,
            maxRecords: config.max_items,
            maxDepth: config.max_depth,
            rawTexts: spec.kind !== 'falco',
            // CloudTrail through the Falco door (cloudtrail-plugin alerts): only for a token that opens
            // the CloudTrail route too, so that the Falco token cannot post CloudTrail.
            edgeCore: spec.kind === 'falco' ? () => req.tokenOpens?.(req, 'cloudtrail') ?? true : undefined,
          },
        )
      } catch (err) {
        if (isNerveError(err)) telemetry.error(err.code, 'read')
        throw err
      }
      count(telemetry, decoded)
      // Folded alerts were accepted and are accounted for (a summary per agent, rule and minute): the
      // answer counts them as accepted, and says how many were folded.
      const budgeted = spec.budget ? spec.budget.admit(decoded) : { decoded, folded: 0 }
      const published = budgeted.decoded
      const spooled = await publishOrSpool(spec, deps, published, req.receivedAt).catch((err: unknown) => {
        if (isNerveError(err)) telemetry.error(err.code, 'publish')
        throw err
      })
      telemetry.sent(published.events.length)
      if (budgeted.folded > 0) telemetry.discarded(budgeted.folded, 'folded')
      const res = answer(decoded, req, spec, log)
      if (budgeted.folded > 0) (res.body as Record<string, unknown>).folded = budgeted.folded
      if (spooled) (res.body as Record<string, unknown>).spooled = true
      return res
    },
  }
}

/** Publishes, or spools while the bus is busy (when the route has a spool); true when spooled. */
async function publishOrSpool(
  spec: ItemsRouteSpec,
  deps: ReceiverDeps,
  decoded: Decoded,
  receivedAt: number,
): Promise<boolean> {
  const spool = spec.spool
  if (!spool) {
    await deps.publisher.publish(spec.component, decoded, receivedAt)
    return false
  }
  if (decoded.events.length === 0 && decoded.invalid.length === 0) return false
  if (!spool.holding()) {
    // A bus that hangs (Kafka unreachable retries for about half a minute) must not outlast the sender's
    // patience: past patienceMs the request is spooled, and a publish that completes later only makes a
    // duplicate, dropped downstream by event id.
    const publishing = deps.publisher.publish(spec.component, decoded, receivedAt)
    let timer: NodeJS.Timeout | undefined
    const slow = new Promise<'slow'>((resolve) => {
      timer = setTimeout(() => resolve('slow'), spool.patienceMs)
    })
    try {
      if ((await Promise.race([publishing, slow])) !== 'slow') return false
      publishing.catch(() => undefined)
    } catch (err) {
      if (!isNerveError(err) || !err.retriable) throw err
    } finally {
      clearTimeout(timer)
    }
  }
  await spool.append(spec.component, decoded, receivedAt)
  return true
}

export function count(telemetry: ComponentTelemetry, decoded: Decoded): void {
  const skipped = Object.entries(decoded.skipped)
  const total = decoded.events.length + decoded.invalid.length + skipped.reduce((n, [, c]) => n + (c ?? 0), 0)
  telemetry.received(total)
  for (const [reason, n] of skipped) telemetry.discarded(n ?? 0, reason)
  if (decoded.invalid.length > 0) {
    telemetry.discarded(decoded.invalid.length, 'invalid')
    telemetry.error('INPUT_INVALID', 'validate', decoded.invalid.length)
  }
}

function answer(decoded: Decoded, req: RouteRequest, spec: ItemsRouteSpec, log: Logger): RouteResponse {
  const body: Record<string, unknown> = { accepted: decoded.events.length }
  if (decoded.internal > 0) body.internal = decoded.internal
  if (Object.keys(decoded.skipped).length > 0) body.skipped = decoded.skipped
  if (decoded.invalid.length === 0) return { status: 202, body }
  log.warn({ error_code: 'INPUT_INVALID', count: decoded.invalid.length }, 'Rejected invalid items.')
  const details = decoded.invalid
    .flatMap((item) => item.problems.map((p) => ({ index: item.index, path: p.path, reason: p.message })))
    .slice(0, maxDetails)
  const plain = String(req.headers['content-type'] ?? '').startsWith('text/plain')
  const hint = plain && decoded.events.length === 0 && spec.plainTextHint ? ` ${spec.plainTextHint}` : ''
  const total = decoded.events.length + decoded.invalid.length
  body.rejected = decoded.invalid.length
  body.error = {
    code: 'INPUT_INVALID',
    message: `${decoded.invalid.length} of ${total} items are invalid; the ${decoded.events.length} valid ones were accepted.${hint}`,
    details,
  }
  return { status: 400, body }
}
