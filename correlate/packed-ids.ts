// Event ids as the buffers keep them. The two shapes real ids take, a lowercase 32-hex digest (ingest's Falco
// ids: 128 bits of a content hash, content-hash.ts) and a lowercase canonical UUID (CloudTrail's eventID),
// are packed into four 32-bit words: 16 bytes in a typed array instead of a 48- or 56-byte string that the
// young-generation collector copies twice before it settles. Any other id (upper case, other lengths, other
// characters) stays a string, so every id comes back exactly. Parsing is arithmetic on char codes: no table
// lookups, no intermediate strings.

/** Words per slot: 128 bits, both packed shapes. */
export const idWords = 4

/** How a slot's id is kept. */
export const textId = 0
export const hexId = 1
export const uuidId = 2

/** Lowercase hex digit values by char code, −1 for every other code below 128. */
const hexValue = new Int8Array(128).fill(-1)
for (let i = 0; i < 16; i++) hexValue['0123456789abcdef'.charCodeAt(i)] = i

/**
 * The value of char code c if it is a lowercase hex digit; otherwise a value with bits above the low four
 * (negative for codes below 128, ≥ 128 for the others), so OR-ing the results of a run tells whether all
 * were digits without a branch per char.
 */
const nibble = (c: number): number => (hexValue[c & 127] as number) | (c & ~127)

const isDash = (i: number) => i === 8 || i === 13 || i === 18 || i === 23

/** Packs `id` into words[at…] and returns hexId or uuidId; textId (words left partly written) for any other id. */
export function packId(id: string, words: Int32Array, at: number): number {
  if (id.length === 32) {
    for (let w = 0; w < 4; w++) {
      let v = 0
      let all = 0
      for (let i = w * 8, end = i + 8; i < end; i++) {
        const d = nibble(id.charCodeAt(i))
        all |= d
        v = (v << 4) | (d & 15)
      }
      if (all >>> 4 !== 0) return textId
      words[at + w] = v
    }
    return hexId
  }
  if (id.length === 36) {
    let v = 0
    let digits = 0
    for (let i = 0; i < 36; i++) {
      const c = id.charCodeAt(i)
      if (isDash(i)) {
        if (c !== 45) return textId
        continue
      }
      const d = nibble(c)
      if (d >>> 4 !== 0) return textId
      v = (v << 4) | d
      if (++digits % 8 === 0) {
        words[at + digits / 8 - 1] = v
        v = 0
      }
    }
    return uuidId
  }
  return textId
}

const hexDigits = Array.from('0123456789abcdef', (c) => c.charCodeAt(0))
/** The char codes of an unpacked id, 36 (uuidId) or 32 (hexId), reused: one string made from them. */
const uuidCodes = new Array<number>(36).fill(0)
const hexCodes = new Array<number>(32).fill(0)

/**
 * The id text of packed words (hexId or uuidId), written digit by digit and made one string by
 * `String.fromCharCode`: no Buffer write, no call into C++ for the hex and no slices joined for a uuid.
 */
export function unpackId(kind: number, words: Int32Array, at: number): string {
  const codes = kind === hexId ? hexCodes : uuidCodes
  let c = 0
  for (let w = 0; w < idWords; w++) {
    const v = words[at + w] as number
    for (let shift = 28; shift >= 0; shift -= 4) {
      if (kind !== hexId && isDash(c)) codes[c++] = 45
      codes[c++] = hexDigits[(v >>> shift) & 15] as number
    }
  }
  return String.fromCharCode.apply(null, codes)
}

/** True when words[a…] and words[b…] hold the same packed id (the caller compares the kinds). */
export function samePacked(x: Int32Array, a: number, y: Int32Array, b: number): boolean {
  for (let w = 0; w < idWords; w++) if (x[a + w] !== y[b + w]) return false
  return true
}

/** Murmur3-style mix of the packed words, seeded with the kind (a packed id never equals a text id). */
export function hashPacked(kind: number, words: Int32Array, at: number): number {
  let h = kind
  for (let w = 0; w < idWords; w++) {
    let k = Math.imul(words[at + w] as number, 0xcc9e2d51)
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
    h ^= k
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) | 0
}

/** FNV-1a over the UTF-16 code units, for ids kept as text. */
export function hashText(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return h | 0
}
