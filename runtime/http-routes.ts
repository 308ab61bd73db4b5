// The route contract between the HTTP server and the stages that fill its table (ingest, the store's
// reads, the console), and the only table that maps error codes to HTTP status.
import type { ErrorCode, NerveError } from './errors.ts'

/** HTTP status per error code: the single table (fastify style). */
export const httpStatusByCode: Record<ErrorCode, number> = {
  INPUT_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SATURATED: 429,
  BUS_UNAVAILABLE: 503,
  BUS_CLOSED: 503,
  STORAGE_FULL: 507,
  SINK_UNAVAILABLE: 503,
  SINK_REJECTED: 502,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
}

/** Seconds a client is told to wait (Retry-After) before it tries again, per saturation code. */
export const retryAfterSeconds: Partial<Record<ErrorCode, number>> = {
  SATURATED: 1,
  BUS_UNAVAILABLE: 5,
  BUS_CLOSED: 5,
  STORAGE_FULL: 30,
  SINK_UNAVAILABLE: 5,
}

export type RouteRequest = {
  /** Raw body bytes (write routes); decoding, decompression and parsing are the route's business. */
  body: Buffer
  headers: Record<string, string | string[] | undefined>
  query: Record<string, string | undefined>
  /** Path parameters of routes such as `/v1/incidents/:id`. */
  params?: Record<string, string | undefined>
  /** Wall-clock time the request arrived, epoch ms. */
  receivedAt: number
  /**
   * Set by the server on an ingest route's request: whether the token the request showed (never a client
   * certificate) also opens the routes of `source`. The Falco route asks it of a cloudtrail-plugin alert.
   */
  tokenOpens?: (req: RouteRequest, source: IngestSource) => boolean
  /**
   * Aborted (its reason a NerveError) once the answer is no longer wanted: the client closed its connection,
   * or the server is closing. A route that queues work (the store's reads) drops it then.
   */
  signal?: AbortSignal
  /** The connection it came on (its socket): what one connection holds can be bounded by it. */
  connection?: object
}

export type RouteResponse = { status: number; body: unknown; headers?: Record<string, string> }

/** Source kinds that may each have their own token, so a Falco node cannot post CloudTrail. */
export type IngestSource = 'falco' | 'cloudtrail' | 'firehose'

export type Route = {
  method: 'GET' | 'POST'
  url: string
  /**
   * `ingest`: needs the ingest token, or the token of the route's `source` (bearer, ?token=,
   * X-Amz-Firehose-Access-Key), or (the Falco route only) a verified client cert.
   * `read`: reads that show identifiers (ARNs, access key ids, command lines): open while the server listens
   * on loopback only and the request's Host names loopback (not a DNS-rebinding page's name), the read
   * token or the ingest token otherwise.
   * Checked on the request line and headers, before any body byte is read.
   */
  auth: 'ingest' | 'read' | 'none'
  /** The source kind of an ingest route: its own token (ingest.tokens.<source>) also opens it. */
  source?: IngestSource
  handle(req: RouteRequest): Promise<RouteResponse>
  /** Answers errors its own way (Firehose expects its own body shape). */
  formatError?(err: NerveError, req: RouteRequest): RouteResponse
  /** Largest body this route takes, when not http.body_limit_bytes (Firehose sends up to 64 MiB). */
  bodyLimit?: number
  /** How a client of this route sends the token, said in the 401 (Firehose: its access key header). */
  authHint?: string
}

/** The answer of the error table: the code's status, and `{ error: { code, message, details? } }`. */
export function errorAnswer(err: NerveError): RouteResponse {
  const body: Record<string, unknown> = { code: err.code, message: err.message }
  if (err.details !== undefined) body.details = err.details
  return { status: httpStatusByCode[err.code], body: { error: body } }
}

/**
 * A stage's readiness, asked by GET /readyz: 503 while any check that is not `optional` fails. A load
 * balancer routes ingest on it, and Falco's senders never retry, so only what ingest needs to accept
 * durably (the bus, the stages that must run) gates it; an optional check (a revoke target, Elasticsearch,
 * an SQS queue) that fails makes the answer `degraded`, 200, with its detail.
 */
export type ReadinessCheck = () => { ok: boolean; detail?: string; optional?: true }

/** A check of a part ingest does not need to accept durably: its failure degrades /readyz, never fails it. */
export function optionalCheck(check: ReadinessCheck): ReadinessCheck {
  return () => ({ ...check(), optional: true })
}
