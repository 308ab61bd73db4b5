// What `nerve replay` says when S3 fails it: one NerveError naming the listing (s3://bucket/prefix) or the
// object (s3://bucket/key), the call, AWS's error code and HTTP status, instead of the SDK's error and
// its stack. The code says what kind of failure it is (the CLI prints the message in one line and exits
// 1): no credentials or credentials not accepted UNAUTHORIZED, a refusal FORBIDDEN, a bucket or object
// that is not there NOT_FOUND, S3 failing or out of reach after the SDK's retries SINK_UNAVAILABLE
// (retriable), any other refusal INPUT_INVALID. Pure.
import { isNerveError, NerveError } from '../runtime/errors.ts'

export type S3Call = 'ListObjectsV2' | 'GetObject'

type SdkError = Error & {
  Code?: string
  code?: unknown
  $metadata?: { httpStatusCode?: number; attempts?: number }
}

/** AWS's codes for credentials that S3 does not accept (HTTP 400 or 403). */
const credentialCodes = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
])

/** What each call needs of IAM, for a refusal's line. */
const needs: Record<S3Call, string> = {
  ListObjectsV2: 's3:ListBucket on the bucket',
  GetObject: 's3:GetObject on the object, and kms:Decrypt on its key when the trail is SSE-KMS encrypted',
}

/** S3's own message, when it adds to the code: at most 200 characters of it. */
function awsMessage(err: SdkError, code: string): string {
  const text = (err.message ?? '').trim().replace(/\.$/, '')
  if (text === '' || text === code || text === 'UnknownError') return ''
  return `: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`
}

/** `err` (what the SDK threw for `call` on `name`) as one line with a code; a NerveError as it is. */
export function s3Failure(err: unknown, name: string, call: S3Call): unknown {
  if (isNerveError(err) || !(err instanceof Error)) return err
  const e = err as SdkError
  if (e.name === 'CredentialsProviderError')
    return new NerveError(
      'UNAUTHORIZED',
      `${name}: no AWS credentials were found for ${call} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role).`,
      { cause: err },
    )
  const status = e.$metadata?.httpStatusCode
  const attempts = e.$metadata?.attempts ?? 1
  if (status === undefined) {
    // No answer from S3: the connection refused, reset or cut, the name not resolved.
    if (typeof e.code === 'string' || e.$metadata !== undefined) {
      const tries = attempts > 1 ? `${attempts} attempts: ` : ''
      return new NerveError(
        'SINK_UNAVAILABLE',
        `${name}: S3 could not be reached for ${call} (${tries}${e.message}).`,
        { retriable: true, cause: err },
      )
    }
    return err
  }
  const code = e.Code ?? e.name
  const what = `${code}, HTTP ${status}${awsMessage(e, code)}`
  if (status === 401 || credentialCodes.has(code))
    return new NerveError(
      'UNAUTHORIZED',
      `${name}: S3 did not accept the credentials for ${call} (${what}).`,
      {
        cause: err,
      },
    )
  if (status === 403)
    return new NerveError(
      'FORBIDDEN',
      `${name}: S3 refused ${call} (${what}); the credentials need ${needs[call]}.`,
      {
        cause: err,
      },
    )
  if (status === 404) {
    const missing = code === 'NoSuchBucket' ? 'the bucket' : code === 'NoSuchKey' ? 'the object' : undefined
    const line = missing
      ? `${name}: ${missing} does not exist (${call}: ${code}, HTTP ${status}).`
      : `${name}: not found (${call}: ${what}).`
    return new NerveError('NOT_FOUND', line, { cause: err })
  }
  if (status >= 500 || status === 429) {
    const times = attempts > 1 ? `failed ${attempts} times` : 'failed'
    return new NerveError('SINK_UNAVAILABLE', `${name}: ${call} ${times} (${what}).`, {
      retriable: true,
      cause: err,
    })
  }
  return new NerveError('INPUT_INVALID', `${name}: S3 refused ${call} (${what}).`, { cause: err })
}
