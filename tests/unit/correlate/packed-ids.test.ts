// Ids packed into words must come back exactly, and only the two lowercase shapes may pack.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
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
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { fixtures } from '../ingest/ingest-harness.ts'

/** The shape of ingest's Falco ids: 32 hex digits of a SHA-256 content hash. */
const digest = '34563f954113b44f6c06a333e2fac047'
const uuid = '39480357-a8a9-4c6d-9c1f-2b6f5a9d3e11'

describe('packed ids', () => {
  it('packs lowercase 32-hex digests and canonical UUIDs and gives them back exactly', () => {
    for (const [id, kind] of [
      [digest, hexId],
      ['0'.repeat(32), hexId],
      ['f'.repeat(32), hexId],
      [uuid, uuidId],
      ['00000000-0000-0000-0000-000000000000', uuidId],
      ['ffffffff-ffff-ffff-ffff-ffffffffffff', uuidId],
    ] as const) {
      const words = new Int32Array(idWords * 2)
      expect(packId(id, words, idWords)).toBe(kind)
      expect(unpackId(kind, words, idWords)).toBe(id)
    }
  })

  it('packs the ids ingest gives real Falco alerts and CloudTrail records', () => {
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const limits = { maxItems: 1000, maxDepth: 64 }
    const ids = (file: string) =>
      decoder
        .decode('any', splitJsonItems(readFileSync(join(fixtures, file), 'utf8'), limits), { receivedAt: 0 })
        .events.map((e) => e.id)
    const words = new Int32Array(idWords)
    for (const id of ids('falco/falco-website.ndjson')) expect(packId(id, words, 0)).toBe(hexId)
    for (const id of ids('cloudtrail/stratus-red-team-detonation-logs.ndjson'))
      expect(packId(id, words, 0)).toBe(uuidId)
  })

  it('leaves every other id as text', () => {
    const words = new Int32Array(idWords)
    for (const id of [
      digest.toUpperCase(),
      `${digest.slice(0, 31)}g`,
      `${digest.slice(0, 31)}/`,
      `${digest.slice(0, 31)}ÿ`,
      // Char codes whose low seven bits are a digit's.
      `${digest.slice(0, 31)}\u00b0`,
      `\u0130${digest.slice(1)}`,
      `${uuid.slice(0, 35)}\u00e1`,
      digest.slice(0, 31),
      `${digest}0`,
      // A whole SHA-256: no ingest path makes one an event id.
      `${digest}${digest}`,
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
    packId(digest, a, 0)
    for (let i = 0; i < 32; i++) {
      const other = `${digest.slice(0, i)}${digest[i] === '0' ? '1' : '0'}${digest.slice(i + 1)}`
      packId(other, b, 0)
      expect(samePacked(a, 0, b, 0)).toBe(false)
    }
    packId(digest, b, 0)
    expect(samePacked(a, 0, b, 0)).toBe(true)
    expect(hashPacked(hexId, a, 0)).toBe(hashPacked(hexId, b, 0))
  })
})
