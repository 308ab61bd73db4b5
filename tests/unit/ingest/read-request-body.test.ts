// A large body is decoded to text in a turn of the event loop of its own (not in the task that gathered
// its bytes, nor in the one that splits it), and the text is the one a plain decode gives.
import { deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  decodeUtf8,
  decodeUtf8InOwnTurn,
  ownTurnBytes,
  readRequestBody,
} from '../../../ingest/read-request-body.ts'
import { countingPause } from '../../helpers/counting-pause.ts'

describe('decodeUtf8InOwnTurn', () => {
  it('gives a large body a turn before and after its decode, and the same text', async () => {
    const text = '{"o":"é€😀 ü"}\n'.repeat(Math.ceil((2 * ownTurnBytes) / 20))
    const data = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])
    const turns = countingPause()
    expect(await decodeUtf8InOwnTurn(data, turns.pause)).toBe(text)
    expect(decodeUtf8(data)).toBe(text)
    expect(turns.turns()).toBe(2)
  })

  it('decodes a small body at once, without a turn', async () => {
    const turns = countingPause()
    expect(await decodeUtf8InOwnTurn(Buffer.from('{"a":1}'), turns.pause)).toBe('{"a":1}')
    expect(turns.turns()).toBe(0)
  })

  it('refuses bytes that are not UTF-8', async () => {
    const bad = Buffer.alloc(2 * ownTurnBytes, 0x20)
    bad[ownTurnBytes] = 0xff
    await expect(decodeUtf8InOwnTurn(bad, async () => {})).rejects.toMatchObject({ code: 'INPUT_INVALID' })
  })
})

describe('readRequestBody', () => {
  const request = (body: Buffer, headers: Record<string, string>) => ({
    body,
    headers,
    query: {},
    receivedAt: 0,
  })

  // The two headers were joined without a separator: `deflate` + `chunked` read as one word, so a chunked
  // deflate body was taken as it was sent (400, not UTF-8), and a chunked `br` one was not refused as such.
  it('reads Content-Encoding beside a Transfer-Encoding: a chunked deflate body inflated, a chunked br refused', async () => {
    const text = '{"eventName":"AttachRolePolicy"}'
    const chunked = { 'transfer-encoding': 'chunked' }
    expect(
      await readRequestBody(request(deflateSync(text), { 'content-encoding': 'deflate', ...chunked }), 1024),
    ).toBe(text)
    await expect(
      readRequestBody(request(Buffer.from('x'), { 'content-encoding': 'br', ...chunked }), 1024),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' })
  })

  it('stops a deflate bomb at the decompressed limit', async () => {
    const bomb = deflateSync(Buffer.alloc(10 * 1024 * 1024))
    await expect(
      readRequestBody(request(bomb, { 'content-encoding': 'deflate' }), 1024 * 1024),
    ).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
  })
})
