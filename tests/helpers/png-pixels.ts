// Decodes an 8-bit RGB or RGBA PNG (what Chromium's screenshots are) into pixels, so a test can look at
// a screenshot: its size, and whether given colours are on it. Non-interlaced only.
import { inflateSync } from 'node:zlib'

export type Pixels = { width: number; height: number; rgb(x: number, y: number): [number, number, number] }

export function decodePng(png: Buffer): Pixels {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG')
  let offset = 8
  let width = 0
  let height = 0
  let channels = 0
  const data: Buffer[] = []
  while (offset < png.length) {
    const length = png.readUInt32BE(offset)
    const type = png.toString('latin1', offset + 4, offset + 8)
    const body = png.subarray(offset + 8, offset + 8 + length)
    if (type === 'IHDR') {
      width = body.readUInt32BE(0)
      height = body.readUInt32BE(4)
      const [depth, colour, , , interlace] = [body[8], body[9], body[10], body[11], body[12]]
      if (depth !== 8 || interlace !== 0 || (colour !== 2 && colour !== 6)) throw new Error('unsupported PNG')
      channels = colour === 6 ? 4 : 3
    } else if (type === 'IDAT') data.push(body)
    offset += 12 + length
  }
  const raw = inflateSync(Buffer.concat(data))
  const stride = width * channels
  const out = Buffer.alloc(stride * height)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i] as number
      const a = i >= channels ? (out[y * stride + i - channels] as number) : 0
      const b = y > 0 ? (out[(y - 1) * stride + i] as number) : 0
      const c = y > 0 && i >= channels ? (out[(y - 1) * stride + i - channels] as number) : 0
      const p = a + b - c
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)]
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter as number] as number
      out[y * stride + i] = (x + predictor) & 0xff
    }
  }
  return {
    width,
    height,
    rgb: (x, y) => {
      const at = y * stride + x * channels
      return [out[at] as number, out[at + 1] as number, out[at + 2] as number]
    },
  }
}

/** How many pixels are within `tolerance` of the colour given as `#rrggbb`. */
export function countColour(pixels: Pixels, hex: string, tolerance = 12): number {
  const want = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))
  let n = 0
  for (let y = 0; y < pixels.height; y++) {
    for (let x = 0; x < pixels.width; x++) {
      const got = pixels.rgb(x, y)
      if (got.every((v, i) => Math.abs(v - (want[i] as number)) <= tolerance)) n++
    }
  }
  return n
}
