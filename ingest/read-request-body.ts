// A request body → text. gzip (Content-Encoding, a Transfer-Encoding coding, or just the gzip magic bytes,
// as an S3 log file posted as is) and deflate are decoded with a ceiling on the decompressed size: a gzip
// bomb stops at the limit and answers 413 instead of filling memory. Any other coding is a 415, and a body
// declared gzip that is no gzip stream a 400: read as plain text, it would be taken for what it is not. A
// large body is decoded to text in a turn of the event loop of its own.
import { promisify } from 'node:util'
import { gunzip, inflate } from 'node:zlib'
import { NerveError } from '../runtime/errors.ts'
import type { RouteRequest } from '../runtime/http-routes.ts'
import { nextTurn } from '../runtime/next-turn.ts'

const gunzipAsync = promisify(gunzip)
const inflateAsync = promisify(inflate)

/** The codings a body may be sent in; `x-gzip` is gzip (RFC 9110 §8.4.1.3). */
const decoders = { gzip: gunzipAsync, 'x-gzip': gunzipAsync, deflate: inflateAsync } as const

export async function readRequestBody(req: RouteRequest, decompressedLimit: number): Promise<string> {
  const coding = bodyCoding(req.headers)
  if (coding === undefined) {
    const body = isGzip(req.body) ? await decompress('gzip', req.body, decompressedLimit) : req.body
    return decodeUtf8InOwnTurn(body)
  }
  if (coding !== 'deflate' && req.body.length > 0 && !isGzip(req.body))
    throw new NerveError(
      'INPUT_INVALID',
      `The body is sent with Content-Encoding: ${coding}, but its gzip stream is broken: it does not begin` +
        ' with the gzip header (1f 8b). Send it compressed whole, or without that header.',
    )
  return decodeUtf8InOwnTurn(await decompress(coding, req.body, decompressedLimit))
}

/**
 * The one coding a body is declared in (Content-Encoding, and Transfer-Encoding but its `chunked`), or
 * undefined for none or `identity`; any other coding, or more than one, is a 415.
 */
function bodyCoding(headers: RouteRequest['headers']): keyof typeof decoders | undefined {
  // The usual request names neither: no arrays built to learn so.
  const encoding = headers['content-encoding']
  const transfer = headers['transfer-encoding']
  if (encoding === undefined && transfer === undefined) return undefined
  const named = [headerText(encoding), headerText(transfer)]
  const codings = named
    .join(',')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity' && c !== 'chunked')
  const [coding] = codings
  if (coding === undefined) return undefined
  if (codings.length === 1 && Object.hasOwn(decoders, coding)) return coding as keyof typeof decoders
  const given = named.filter((text) => text !== '').join(', ')
  throw new NerveError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Content-Encoding "${given.slice(0, 100)}" is not supported: send the body uncompressed, or as gzip or` +
      ' deflate (one of them).',
  )
}

/** Decompresses one buffer (a request body, a Firehose record) with the same ceiling. */
export async function gunzipLimited(data: Buffer, decompressedLimit: number): Promise<Buffer> {
  return isGzip(data) ? decompress('gzip', data, decompressedLimit) : data
}

function isGzip(data: Buffer): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/** UTF-8 text without a byte-order mark; bytes that are not UTF-8 are refused rather than replaced. */
export function decodeUtf8(data: Buffer): string {
  try {
    return utf8.decode(data)
  } catch {
    throw new NerveError('INPUT_INVALID', 'The body is not UTF-8 text.')
  }
}

/**
 * Past this size a body is decoded in a turn of the event loop of its own. The end of a 4 MB body's read
 * was one task: fastify's Buffer.concat of its chunks (about 3 ms on a quiet machine), the UTF-8 decode
 * (4-5 ms), then the split of the text and the decode of its first part (about 3 ms); 15-38 ms under load.
 * (Decoding in parts did not help: joining the parts into the one string the split needs costs as much as
 * the decode.)
 */
export const ownTurnBytes = 512 * 1024

/** decodeUtf8, with `pause` awaited before and after it for a body over ownTurnBytes. */
export async function decodeUtf8InOwnTurn(
  data: Buffer,
  pause: () => Promise<void> = nextTurn,
): Promise<string> {
  if (data.length <= ownTurnBytes) return decodeUtf8(data)
  await pause()
  const text = decodeUtf8(data)
  await pause()
  return text
}

async function decompress(coding: keyof typeof decoders, data: Buffer, limit: number): Promise<Buffer> {
  try {
    return await decoders[coding](data, { maxOutputLength: limit })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new NerveError('PAYLOAD_TOO_LARGE', `The body is over ${limit} bytes once decompressed.`)
    }
    const stream = coding === 'deflate' ? 'deflate' : 'gzip'
    throw new NerveError(
      'INPUT_INVALID',
      `The body is not valid compressed data: its ${stream} stream is broken (${(err as Error).message}).`,
    )
  }
}

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '')
}
