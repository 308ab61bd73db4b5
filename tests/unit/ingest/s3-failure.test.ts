// What the SDK throws for S3, as the one line and code `nerve replay` shows: the errors a real S3 sends that
// the loopback stand-in is not asked for in tests/replay/s3-replay.test.ts.
import { describe, expect, it } from 'vitest'
import { s3Failure } from '../../../ingest/s3-failure.ts'
import { NerveError } from '../../../runtime/errors.ts'

/** An error as the SDK's S3 client throws it for an answer of `status` with AWS's `code`. */
const sdkError = (code: string, status: number, message: string, attempts = 1) =>
  Object.assign(new Error(message), {
    name: code,
    Code: code,
    $metadata: { httpStatusCode: status, attempts },
  })

const object = 's3://org-trail/AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/01/a.json.gz'

describe('s3Failure', () => {
  it('names the object, the call and what S3 said, with a code per kind of failure', () => {
    const cases: [Error, string, boolean, string][] = [
      [
        sdkError('NoSuchKey', 404, 'The specified key does not exist.'),
        'NOT_FOUND',
        false,
        `${object}: the object does not exist (GetObject: NoSuchKey, HTTP 404).`,
      ],
      [
        sdkError('ExpiredToken', 400, 'The provided token has expired.'),
        'UNAUTHORIZED',
        false,
        `${object}: S3 did not accept the credentials for GetObject (ExpiredToken, HTTP 400: The provided token has expired).`,
      ],
      [
        sdkError('SlowDown', 503, 'Please reduce your request rate.', 3),
        'SINK_UNAVAILABLE',
        true,
        `${object}: GetObject failed 3 times (SlowDown, HTTP 503: Please reduce your request rate).`,
      ],
      [
        sdkError('InvalidRequest', 400, 'The object was stored using a form of SSE-C.'),
        'INPUT_INVALID',
        false,
        `${object}: S3 refused GetObject (InvalidRequest, HTTP 400: The object was stored using a form of SSE-C).`,
      ],
      [
        Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
        'SINK_UNAVAILABLE',
        true,
        `${object}: S3 could not be reached for GetObject (socket hang up).`,
      ],
    ]
    for (const [err, code, retriable, message] of cases) {
      expect(s3Failure(err, object, 'GetObject')).toMatchObject({ code, retriable, message, cause: err })
    }
  })

  it('cuts a long message from the endpoint to 200 characters', () => {
    const failure = s3Failure(sdkError('AccessDenied', 403, 'x'.repeat(5000)), object, 'GetObject') as Error
    expect(failure.message.length).toBeLessThan(object.length + 400)
  })

  it('leaves nerve’s own errors and what is no S3 failure (a bug) as they are', () => {
    const ours = new NerveError('SINK_UNAVAILABLE', `${object}: S3 did not send it whole within 500 ms.`)
    expect(s3Failure(ours, object, 'GetObject')).toBe(ours)
    const bug = new TypeError('undefined is not a function')
    expect(s3Failure(bug, object, 'GetObject')).toBe(bug)
  })
})
