// A request body → text. gzip (Content-Encoding, Falco's compress_uploads Transfer-Encoding, or just the
// gzip magic bytes, as an S3 log file posted as is) and deflate are decoded with a ceiling on the
// decompressed size: a gzip bomb stops at the limit and answers 413 instead of filling memory. A large body
// is decoded to text in a turn of the event loop of its own.
import { promisify } from 'node:util'
import { gunzip, inflate } from 'node:zlib'
import { NerveError } from '../runtime/errors.ts'
import type { RouteRequest } from '../runtime/http-routes.ts'
import { nextTurn } from '../runtime/next-turn.ts'

const gunzipAsync = promisify(gunzip)
const inflateAsync = promisify(inflate)

export async function readRequestBody(req: RouteRequest, decompressedLimit: number): Promise<string> {
  // Joined as one list: side by side, `deflate` and `chunked` read as one word.
  const named = [headerText(req.headers['content-encoding']), headerText(req.headers['transfer-encoding'])]
  const encoding = named.filter((text) => text !== '').join(', ')
  if (/\b(br|zstd|compress)\b/i.test(encoding)) {
    throw new NerveError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Encoding "${encoding}" is not supported: use gzip.`,
    )
  }
  const body = /\bdeflate\b/i.test(encoding)
    ? await decompress(inflateAsync, req.body, decompressedLimit)
    : isGzip(req.body)
      ? await decompress(gunzipAsync, req.body, decompressedLimit)
      : req.body
  return decodeUtf8InOwnTurn(body)
}

/** Decompresses one buffer (a request body, a Firehose record) with the same ceiling. */
export async function gunzipLimited(data: Buffer, decompressedLimit: number): Promise<Buffer> {
  return isGzip(data) ? decompress(gunzipAsync, data, decompressedLimit) : data
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

async function decompress(
  method: (data: Buffer, options: { maxOutputLength: number }) => Promise<Buffer>,
  data: Buffer,
  limit: number,
): Promise<Buffer> {
  try {
    return await method(data, { maxOutputLength: limit })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new NerveError('PAYLOAD_TOO_LARGE', `The body is over ${limit} bytes once decompressed.`)
    }
    throw new NerveError('INPUT_INVALID', `The body is not valid compressed data: ${(err as Error).message}`)
  }
}

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '')
}
