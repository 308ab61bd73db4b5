// `nerve replay s3://bucket/prefix`: the trail's objects where they are, through the AWS SDK (the S3
// client of s3-client.ts: the SDK's credential chain and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
// ListObjectsV2 pages through the prefix, keeping the event files (as a local directory walk does) whose
// CloudTrail time is within --since/--until; under a region's folder (`…/CloudTrail/<region>/`, where
// keys sort by day) the listing starts at the day before --since and stops after the day of --until,
// so a month of a busy trail is not listed whole. GetObject streams each object, gunzipped when it is.
import { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { NerveError } from '../runtime/errors.ts'
import { gunzipChunkBytes } from './read-replay-files.ts'
import { inWindow, type TimeWindow } from './replay-file-time.ts'

export type ReplayObject = { path: string; size: number }

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
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
      }),
    )
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

/** The object's bytes, gunzipped when they start with gzip's magic bytes. */
export async function openS3Object(s3: S3Client, path: string): Promise<Readable> {
  const { bucket, prefix: key } = parseS3Url(path)
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  if (!Body) throw new NerveError('INPUT_INVALID', `${path} has no body.`)
  const body = Body as Readable
  const chunks = body[Symbol.asyncIterator]()
  const first = await chunks.next()
  const head = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Uint8Array)
  const rest = Readable.from(
    (async function* () {
      if (head.length > 0) yield head
      for (let next = await chunks.next(); !next.done; next = await chunks.next())
        yield next.value as Uint8Array
    })(),
  )
  if (head[0] !== 0x1f || head[1] !== 0x8b) return rest
  const gunzip = createGunzip({ chunkSize: gunzipChunkBytes })
  // pipe() does not pass an error on: a connection lost mid-object would leave the gunzip waiting forever.
  rest.on('error', (err) => gunzip.destroy(err))
  return rest.pipe(gunzip)
}
