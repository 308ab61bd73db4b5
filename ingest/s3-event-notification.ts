// An SQS message body → the S3 objects it announces. Pure. The shapes a CloudTrail queue receives:
// - an S3 event notification, sent to SQS directly or through SNS with raw delivery:
//   {"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name"},"object":{"key","size"}}}]}
//   whose object keys are URL-encoded the way HTML forms are ('+' is a space);
// - the same inside an SNS envelope: {"Type":"Notification","TopicArn":…,"Message":"<the notification as a string>"};
// - CloudTrail's own SNS notification of a delivered log file: {"s3Bucket":…,"s3ObjectKey":["AWSLogs/…"]}
//   (keys as they are, not encoded), usually inside the SNS envelope;
// - the test event S3 sends when a notification is configured: {"Service":"Amazon S3","Event":"s3:TestEvent"}.
// - S3's EventBridge event, sent to SQS by a rule: {"source":"aws.s3","detail-type":"Object Created",
//   "detail":{"bucket":{"name"},"object":{"key","size"}}} (keys as they are); other detail types are ignored.
// CloudTrail-Digest/ objects (hourly integrity digests, not records) are listed apart, to be skipped, and so
// are objects whose key is not where CloudTrail writes a log file (AWS Config snapshots, flow logs and the
// like share log-archive buckets). Whoever can send to the queue writes the message, so a name S3 would not
// hand out (an ARN for a bucket, a key that ".." walks out of its bucket) is refused, never fetched, and an
// object named twice is listed once.

export type S3ObjectRef = { bucket: string; key: string; size?: number }

export type RefusedObject = S3ObjectRef & { reason: string }

export type S3Notification =
  | { kind: 'test' }
  | {
      kind: 'objects'
      /** CloudTrail log files, each once. */
      objects: S3ObjectRef[]
      digests: S3ObjectRef[]
      /** Objects whose key is not a CloudTrail log file's. */
      other: S3ObjectRef[]
      refused: RefusedObject[]
      /** Objects named again in the same message. */
      duplicates: number
      /** Records of events other than ObjectCreated. */
      ignored: number
    }
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

/**
 * Where CloudTrail writes a log file: `[prefix/]AWSLogs/[o-org/]account/CloudTrail/region/YYYY/MM/DD/file`.
 * Digests are under CloudTrail-Digest/, Insights events under CloudTrail-Insight/.
 */
const cloudTrailLogKey =
  /(?:^|\/)AWSLogs\/(?:o-[a-z0-9]{10,32}\/)?\d{12}\/CloudTrail\/[a-z0-9-]+\/\d{4}\/\d{2}\/\d{2}\/[^/]+$/

export function isCloudTrailLogKey(key: string): boolean {
  return cloudTrailLogKey.test(key)
}

/**
 * A bucket as S3 names one: letters, digits, dots and hyphens (capitals and underscores in legacy us-east-1
 * names), at most 255 characters. Never an ARN: the SDK sends an access point or Object Lambda ARN to that
 * access point, whose owner answers for it.
 */
const bucketName = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/
/** S3's own limit on a key. */
const maxKeyBytes = 1024

/** Why nerve must not fetch this object, or undefined. */
export function refusalOf(ref: S3ObjectRef): string | undefined {
  if (!bucketName.test(ref.bucket)) return 'the bucket is not an S3 bucket name.'
  if (Buffer.byteLength(ref.key) > maxKeyBytes) return `the key is over ${maxKeyBytes} bytes.`
  // The SDK sends them as they are; a store that resolves them serves another bucket's object.
  if (ref.key.split('/').some((segment) => segment === '.' || segment === '..')) {
    return 'the key has a "." or ".." segment.'
  }
  return undefined
}

/** Sorts the objects a message names: each once, refused, digest, other, or a log file to read. */
function sortObjects(refs: readonly S3ObjectRef[], ignored: number): S3Notification {
  const seen = new Set<string>()
  const sorted = {
    kind: 'objects' as const,
    objects: [] as S3ObjectRef[],
    digests: [] as S3ObjectRef[],
    other: [] as S3ObjectRef[],
    refused: [] as RefusedObject[],
    duplicates: 0,
    ignored,
  }
  for (const ref of refs) {
    const id = `${ref.bucket}/${ref.key}`
    if (seen.has(id)) {
      sorted.duplicates++
      continue
    }
    seen.add(id)
    const reason = refusalOf(ref)
    if (reason) sorted.refused.push({ ...ref, reason })
    else if (isDigestKey(ref.key)) sorted.digests.push(ref)
    else if (!isCloudTrailLogKey(ref.key)) sorted.other.push(ref)
    else sorted.objects.push(ref)
  }
  return sorted
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
  } else if (value.source === 'aws.s3' && isObject(value.detail)) {
    const { bucket, object } = value.detail
    const name = isObject(bucket) ? bucket.name : undefined
    const key = isObject(object) ? object.key : undefined
    if (value['detail-type'] !== 'Object Created') ignored++
    else if (typeof name !== 'string' || typeof key !== 'string' || !key) {
      return { kind: 'unreadable', reason: 'The EventBridge event names no bucket and key.' }
    } else {
      const size = isObject(object) && typeof object.size === 'number' ? object.size : undefined
      refs.push({ bucket: name, key, ...(size !== undefined ? { size } : {}) })
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
      reason:
        'Not an S3 event notification (direct, in an SNS envelope or from EventBridge) or a CloudTrail SNS notification.',
    }
  }
  if (refs.length > maxObjectsPerMessage) {
    return {
      kind: 'unreadable',
      reason: `The message names ${refs.length} objects; at most ${maxObjectsPerMessage} are read from one.`,
    }
  }
  return sortObjects(refs, ignored)
}
