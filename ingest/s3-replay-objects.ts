// `nerve replay s3://bucket/prefix`: the trail's objects where they are, through the AWS SDK (the S3
// client of s3-client.ts: the SDK's credential chain and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
// ListObjectsV2 pages through the prefix, keeping the event files (as a local directory walk does) whose
// CloudTrail time is within --since/--until; under a region's folder (`…/CloudTrail/<region>/`, where
// keys sort by day) the listing starts at the day before --since and stops after the day of --until,
// so a month of a busy trail is not listed whole. GetObject streams each object, gunzipped when it is.
// Every wait on S3 is bounded (s3WaitMs): an endpoint that stalls, never answers or sends a byte at a time
// fails the replay with the object's name instead of holding it for good. For an object, the bound is on
// the time spent waiting for S3 (its answer, then each next part of its body), not on the time the reader
// takes to decode what came: a slow decode pauses the body (back-pressure) and is no stall. What S3
// answers instead of a listing or an object is one line naming it (s3-failure.ts), not the SDK's error.
import { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { isNerveError, NerveError } from '../runtime/errors.ts'
import { gunzipChunkBytes } from './read-replay-files.ts'
import { inWindow, type TimeWindow } from './replay-file-time.ts'
import { s3Failure } from './s3-failure.ts'

export type ReplayObject = { path: string; size: number }

/** Longest time `nerve replay` waits on S3 for one listing page, or in all for one object's bytes. */
export const s3WaitMs = 120_000

const eventFile = /\.(?:json|ndjson|jsonl)(?:\.gz)?$|\.gz$/i
const dayMs = 86_400_000

export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url)
  if (!m?.[1]) throw new NerveError('INPUT_INVALID', `"${url}" is not an s3://bucket/prefix URL.`)
  return { bucket: m[1], prefix: m[2] ?? '' }
}

const dayPath = (time: number) => new Date(time).toISOString().slice(0, 10).replace(/-/g, '/')

export async function listReplayObjects(
  s3: S3Client,
  url: string,
  window: TimeWindow,
): Promise<ReplayObject[]> {
  const { bucket, prefix } = parseS3Url(url)
  const byDay = /(?:^|\/)CloudTrail\/[^/]+\/$/.test(prefix)
  const startAfter =
    byDay && window.since !== undefined ? `${prefix}${dayPath(window.since - dayMs)}` : undefined
  const stopAfter =
    byDay && window.until !== undefined ? `${prefix}${dayPath(window.until + dayMs)}/` : undefined
  const objects: ReplayObject[] = []
  let token: string | undefined
  for (;;) {
    const page = await s3
      .send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
        }),
        { abortSignal: AbortSignal.timeout(s3WaitMs) },
      )
      .catch((err: unknown) => {
        if ((err as Error).name !== 'AbortError') throw s3Failure(err, url, 'ListObjectsV2')
        throw new NerveError('SINK_UNAVAILABLE', `${url}: S3 did not list it within ${s3WaitMs} ms.`)
      })
    for (const object of page.Contents ?? []) {
      const key = object.Key
      if (!key) continue
      if (stopAfter !== undefined && key > stopAfter) return objects
      if (key.includes('/CloudTrail-Digest/') || !eventFile.test(key) || !inWindow(key, window)) continue
      objects.push({ path: `s3://${bucket}/${key}`, size: object.Size ?? 0 })
    }
    if (!page.IsTruncated || !page.NextContinuationToken) return objects
    token = page.NextContinuationToken
  }
}

/**
 * Runs each step given it within what is left of `waitMs` in all; past it, `giveUp` ends the step and the
 * read fails naming `path`. Only the time spent waiting in a step is counted.
 */
function waitBudget(path: string, waitMs: number) {
  let left = waitMs
  return async <T>(step: Promise<T>, giveUp: () => void): Promise<T> => {
    const start = performance.now()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          giveUp()
          reject(new NerveError('SINK_UNAVAILABLE', `${path}: S3 did not send it whole within ${waitMs} ms.`))
        },
        Math.max(0, left),
      )
    })
    try {
      return await Promise.race([step, late])
    } finally {
      clearTimeout(timer)
      left -= performance.now() - start
    }
  }
}

/**
 * A GetObject that S3 refuses for this one object (403: an SSE-KMS key the credentials may not use, an
 * archived object, a bucket policy on its key) or no longer has (404: gone since the listing) is a file
 * whose bytes are unusable (INPUT_INVALID), rejected alone as a truncated .gz is: whoever may write into
 * the trail's bucket (the watched agent, if its role lets it) could otherwise plant one such object under
 * the prefix and stop the whole backtest. Credentials refused, S3 failing or out of reach still end it.
 */
function objectFailure(err: unknown): unknown {
  if (!isNerveError(err) || (err.code !== 'FORBIDDEN' && err.code !== 'NOT_FOUND')) return err
  return new NerveError('INPUT_INVALID', err.message, { cause: err })
}

/** The object's bytes, gunzipped when they start with gzip's magic bytes. */
export async function openS3Object(s3: S3Client, path: string, waitMs = s3WaitMs): Promise<Readable> {
  const { bucket, prefix: key } = parseS3Url(path)
  const within = waitBudget(path, waitMs)
  const request = new AbortController()
  const { Body } = await within(
    s3
      .send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: request.signal })
      .catch((err: unknown) => {
        throw objectFailure(s3Failure(err, path, 'GetObject'))
      }),
    () => request.abort(),
  )
  if (!Body) throw new NerveError('INPUT_INVALID', `${path} has no body.`)
  const body = Body as Readable
  const chunks = body[Symbol.asyncIterator]()
  // A connection lost mid-body is S3 out of reach too, naming the object.
  const next = () =>
    within(
      chunks.next().catch((err: unknown) => {
        throw s3Failure(err, path, 'GetObject')
      }),
      () => body.destroy(),
    )
  const first = await next()
  const head = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Uint8Array)
  const rest = Readable.from(
    (async function* () {
      if (head.length > 0) yield head
      for (let chunk = await next(); !chunk.done; chunk = await next()) yield chunk.value as Uint8Array
    })(),
  )
  if (head[0] !== 0x1f || head[1] !== 0x8b) return rest
  const gunzip = createGunzip({ chunkSize: gunzipChunkBytes })
  // pipe() does not pass an error on: a connection lost mid-object would leave the gunzip waiting forever.
  rest.on('error', (err) => gunzip.destroy(err))
  return rest.pipe(gunzip)
}
