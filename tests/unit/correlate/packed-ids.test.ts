// Ids packed into words must come back exactly, and only the two lowercase shapes may pack.
import { describe, expect, it } from 'vitest'
import {
  hashPacked,
  hexId,
  idWords,
  packId,
  samePacked,
  textId,
  unpackId,
  uuidId,
} from '../../../correlate/packed-ids.ts'

const sha = 'f3a1c9e07b5d4e2a9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d'
const uuid = '39480357-a8a9-4c6d-9c1f-2b6f5a9d3e11'

describe('packed ids', () => {
  it('packs lowercase 64-hex digests and canonical UUIDs and gives them back exactly', () => {
    for (const [id, kind] of [
      [sha, hexId],
      ['0'.repeat(64), hexId],
      ['f'.repeat(64), hexId],
      [uuid, uuidId],
      ['00000000-0000-0000-0000-000000000000', uuidId],
      ['ffffffff-ffff-ffff-ffff-ffffffffffff', uuidId],
    ] as const) {
      const words = new Int32Array(idWords * 2)
      expect(packId(id, words, idWords)).toBe(kind)
      expect(unpackId(kind, words, idWords)).toBe(id)
    }
  })

  it('leaves every other id as text', () => {
    const words = new Int32Array(idWords)
    for (const id of [
      sha.toUpperCase(),
      `${sha.slice(0, 63)}g`,
      `${sha.slice(0, 63)}/`,
      `${sha.slice(0, 63)}ÿ`,
      // Char codes whose low seven bits are a digit's.
      `${sha.slice(0, 63)}\u00b0`,
      `\u0130${sha.slice(1)}`,
      `${uuid.slice(0, 35)}\u00e1`,
      sha.slice(0, 63),
      `${sha}0`,
      uuid.toUpperCase(),
      uuid.replaceAll('-', '_'),
      `${uuid.slice(0, 8)}${uuid.slice(9)}-`,
      '',
      'ab12',
    ]) {
      expect(packId(id, words, 0)).toBe(textId)
    }
  })

  it('tells ids apart that differ in one digit, in any word', () => {
    const a = new Int32Array(idWords)
    const b = new Int32Array(idWords)
    packId(sha, a, 0)
    for (let i = 0; i < 64; i++) {
      const other = `${sha.slice(0, i)}${sha[i] === '0' ? '1' : '0'}${sha.slice(i + 1)}`
      packId(other, b, 0)
      expect(samePacked(hexId, a, 0, b, 0)).toBe(false)
    }
    packId(sha, b, 0)
    expect(samePacked(hexId, a, 0, b, 0)).toBe(true)
    expect(hashPacked(hexId, a, 0)).toBe(hashPacked(hexId, b, 0))
  })
})
