// An SQS message body → the S3 objects it announces. Pure. The shapes a CloudTrail queue receives:
// - an S3 event notification, sent to SQS directly or through SNS with raw delivery:
//   {"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name"},"object":{"key","size"}}}]}
//   whose object keys are URL-encoded the way HTML forms are ('+' is a space);
// - the same inside an SNS envelope: {"Type":"Notification","TopicArn":…,"Message":"<the notification as a string>"};
// - CloudTrail's own SNS notification of a delivered log file: {"s3Bucket":…,"s3ObjectKey":["AWSLogs/…"]}
//   (keys as they are, not encoded), usually inside the SNS envelope;
// - the test event S3 sends when a notification is configured: {"Service":"Amazon S3","Event":"s3:TestEvent"}.
// CloudTrail-Digest/ objects (hourly integrity digests, not records) are listed apart, to be skipped.

export type S3ObjectRef = { bucket: string; key: string; size?: number }

export type S3Notification =
  | { kind: 'test' }
  | { kind: 'objects'; objects: S3ObjectRef[]; digests: S3ObjectRef[]; ignored: number }
  | { kind: 'unreadable'; reason: string }

/** Most objects one message may name: S3 sends one, CloudTrail's SNS notification a handful. */
export const maxObjectsPerMessage = 100

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

function parse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** S3 event notification keys are form-encoded: '+' for a space, %XX for the rest. */
export function decodeS3EventKey(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '))
  } catch {
    return key
  }
}

export function isDigestKey(key: string): boolean {
  return /(^|\/)CloudTrail-Digest\//.test(key)
}

export function parseS3Notification(body: string): S3Notification {
  let value = parse(body)
  if (isObject(value) && value.Type === 'Notification' && typeof value.Message === 'string') {
    value = parse(value.Message)
  }
  if (!isObject(value)) return { kind: 'unreadable', reason: 'The message body is not a JSON object.' }
  if (value.Event === 's3:TestEvent') return { kind: 'test' }
  const refs: S3ObjectRef[] = []
  let ignored = 0
  if (typeof value.s3Bucket === 'string' && Array.isArray(value.s3ObjectKey)) {
    for (const key of value.s3ObjectKey) {
      if (typeof key === 'string' && key) refs.push({ bucket: value.s3Bucket, key })
    }
  } else if (Array.isArray(value.Records)) {
    for (const record of value.Records) {
      const s3 = isObject(record) && isObject(record.s3) ? record.s3 : undefined
      const bucket = s3 && isObject(s3.bucket) ? s3.bucket.name : undefined
      const object = s3 && isObject(s3.object) ? s3.object : undefined
      const created = isObject(record) && String(record.eventName ?? '').startsWith('ObjectCreated:')
      if (typeof bucket !== 'string' || !object || typeof object.key !== 'string' || !created) {
        ignored++
        continue
      }
      const size = typeof object.size === 'number' ? object.size : undefined
      refs.push({ bucket, key: decodeS3EventKey(object.key), ...(size !== undefined ? { size } : {}) })
    }
    if (refs.length === 0 && ignored === 0) {
      return { kind: 'unreadable', reason: 'The notification has no S3 records.' }
    }
  } else {
    return {
      kind: 'unreadable',
      reason: 'Not an S3 event notification, an SNS envelope of one, or a CloudTrail SNS notification.',
    }
  }
  if (refs.length > maxObjectsPerMessage) {
    return {
      kind: 'unreadable',
      reason: `The message names ${refs.length} objects; at most ${maxObjectsPerMessage} are read from one.`,
    }
  }
  return {
    kind: 'objects',
    objects: refs.filter((r) => !isDigestKey(r.key)),
    digests: refs.filter((r) => isDigestKey(r.key)),
    ignored,
  }
}
