// One CloudTrail log file's bytes from S3, as the S3 + SQS reader takes them: at most max_object_bytes (a
// store that streams without Content-Length is bounded too), and within object_timeout from the request
// to the body's last byte. Every failure is an ObjectFailure that says whether reading again could help.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { isNerveError, NerveError } from '../runtime/errors.ts'
import type { S3SqsConfig } from '../schemas/types.ts'
import type { S3ObjectRef } from './s3-event-notification.ts'

/** S3 errors that no retry can mend: the object is dead-lettered and the message goes on. */
const permanentS3Errors = new Set(['NoSuchKey', 'NoSuchBucket', 'InvalidObjectState'])

/** s3://bucket/key as a reason shows it: the sender chose it, so at most 300 characters of it. */
export const nameOf = (ref: S3ObjectRef) => {
  const name = `s3://${ref.bucket}/${ref.key}`
  return name.length > 300 ? `${name.slice(0, 300)}…` : name
}

/** Why one object could not be read, and whether reading it again could help. */
export class ObjectFailure extends Error {
  constructor(
    readonly ref: S3ObjectRef,
    readonly code: string,
    message: string,
    readonly permanent: boolean,
    readonly timedOut = false,
  ) {
    super(`s3://${ref.bucket}/${ref.key}: ${message}`)
  }
}

/** The failed object of a log line, when one failed: its bucket and its key (as nameOf cuts it). */
export const objectFields = (err: unknown) =>
  err instanceof ObjectFailure
    ? { bucket: err.ref.bucket, key: nameOf(err.ref).slice(`s3://${err.ref.bucket}/`.length) }
    : {}

/** The object's bytes, stopping at `limit`: a store that streams without Content-Length is bounded too. */
async function readLimited(body: AsyncIterable<Uint8Array> | undefined, limit: number): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  let length = 0
  for await (const chunk of body ?? []) {
    length += chunk.length
    // Leaving the loop by a throw ends the iterator, which destroys the response stream.
    if (length > limit) throw new NerveError('PAYLOAD_TOO_LARGE', `the object is over ${limit} bytes.`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, length)
}

/** The object's stored bytes; `stop` (the reader closing) ends the read too, as a failure to retry. */
export async function fetchS3Object(
  s3: S3Client,
  ref: S3ObjectRef,
  config: Pick<S3SqsConfig, 'max_object_bytes' | 'object_timeout'>,
  stop: AbortSignal,
): Promise<Buffer> {
  // One deadline for the request, its retries and every byte of the body: the SDK destroys the request
  // (and so the body stream being read) when its abort signal fires, so a stalled endpoint cannot hold
  // the message, and the queue's polling behind it, for longer. A controller of its own per read, not
  // AbortSignal.any over `stop`: composites of a long-lived signal are retained by it (nodejs/node#55351).
  const read = new AbortController()
  let timedOut = false
  const deadline = setTimeout(() => {
    timedOut = true
    read.abort()
  }, config.object_timeout)
  const onStop = () => read.abort()
  stop.addEventListener('abort', onStop, { once: true })
  if (stop.aborted) read.abort()
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }), {
      abortSignal: read.signal,
    })
    if ((out.ContentLength ?? 0) > config.max_object_bytes) {
      // The body is let go unread: left open, it would keep one of the client's sockets for good, and a
      // bucket of such objects would leave none for the objects after them.
      ;(out.Body as { destroy?: () => void } | undefined)?.destroy?.()
      throw new NerveError('PAYLOAD_TOO_LARGE', `the object is over ${config.max_object_bytes} bytes.`)
    }
    const body = await readLimited(out.Body as AsyncIterable<Uint8Array> | undefined, config.max_object_bytes)
    // A body cut off by the abort may end as if whole: a timed-out read is never taken for the object.
    if (timedOut) throw new Error('timed out')
    return body
  } catch (err) {
    if (timedOut && !stop.aborted) {
      const why = `not read within ${config.object_timeout} ms.`
      throw new ObjectFailure(ref, 'SINK_UNAVAILABLE', why, false, true)
    }
    if (isNerveError(err)) throw new ObjectFailure(ref, err.code, err.message, true)
    const name = (err as { name?: string }).name ?? 'Error'
    throw new ObjectFailure(ref, name, `${name}: ${(err as Error).message}`, permanentS3Errors.has(name))
  } finally {
    clearTimeout(deadline)
    stop.removeEventListener('abort', onStop)
  }
}
