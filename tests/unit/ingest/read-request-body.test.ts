// A large body is decoded to text in a turn of the event loop of its own (not in the task that gathered
// its bytes, nor in the one that splits it), and the text is the one a plain decode gives.
import { describe, expect, it } from 'vitest'
import { decodeUtf8, decodeUtf8InOwnTurn, ownTurnBytes } from '../../../ingest/read-request-body.ts'
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
