// Reading the next replay file ahead gives each file's bytes unchanged, holds a bounded part of the next
// one, and reports a file's error when that file is read, not before.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { readAhead } from '../../../ingest/read-ahead.ts'
import { gunzipChunkBytes, openMaybeGzipped } from '../../../ingest/read-replay-files.ts'
import { tempDir } from '../../helpers/random-names.ts'

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/**
 * A small file then an 8 MiB one, read ahead 256 KiB at a time; `source()` is the big file's own stream
 * (undefined until read-ahead opened it).
 */
async function smallThenBig() {
  const dir = tempDir('nerve-read-ahead')
  const small = join(dir, 'small.json')
  const big = join(dir, 'big.json')
  writeFileSync(small, '{}')
  writeFileSync(big, randomBytes(8 << 20))
  let opened: Readable | undefined
  const open = readAhead(
    async (path) => {
      const s = await openMaybeGzipped(path)
      if (path === big) opened = s
      return s
    },
    [small, big],
    256 * 1024,
  )
  return { small, big, open, source: () => opened }
}

describe('readAhead', () => {
  it('gives every file its own bytes, plain and gzipped, larger than what is held ahead', async () => {
    const dir = tempDir('nerve-read-ahead')
    const contents = [randomBytes(3_000_000), randomBytes(10), Buffer.alloc(0), randomBytes(700_000)]
    const files = contents.map((bytes, n) => {
      const path = join(dir, n % 2 === 0 ? `f${n}.json.gz` : `f${n}.json`)
      writeFileSync(path, n % 2 === 0 ? gzipSync(bytes) : bytes)
      return path
    })
    const opened: string[] = []
    const open = readAhead(
      (path) => {
        opened.push(path)
        return openMaybeGzipped(path)
      },
      files,
      64 * 1024,
    )
    for (const [n, file] of files.entries()) {
      const stream = await open(file)
      // The next file was opened as this one was, before this one is read.
      expect(opened).toEqual(files.slice(0, Math.min(n + 2, files.length)))
      expect((await bytesOf(stream)).equals(contents[n] as Buffer)).toBe(true)
    }
    open.close()
  })

  it('holds at most about its limit of a file not read yet', async () => {
    const { small, big, open, source } = await smallThenBig()
    await bytesOf(await open(small))
    await new Promise((resolve) => setTimeout(resolve, 200))
    // Paused past the limit: the 8 MiB file is not read to its end while nobody asks for it.
    expect(source()?.readableEnded).toBe(false)
    expect(source()?.isPaused()).toBe(true)
    const all = await bytesOf(await open(big))
    expect(all.length).toBe(8 << 20)
    open.close()
  })

  it('closes the file read ahead when the replay stops before reading it (no descriptor left open)', async () => {
    const { small, open, source } = await smallThenBig()
    await bytesOf(await open(small))
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(source()?.isPaused()).toBe(true)
    // The replay fails on the first file and closes the opener: the big file, paused past the limit and
    // never asked for, must not stay open.
    open.close()
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(source()?.destroyed).toBe(true)
  })

  it('closes the source when the reader destroys a file part way through', async () => {
    const { small, big, open, source } = await smallThenBig()
    await bytesOf(await open(small))
    const stream = await open(big)
    for await (const _ of stream) break
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(source()?.destroyed).toBe(true)
    open.close()
  })

  it('reports a file that cannot be read when it is opened, and a path out of order is opened as asked', async () => {
    const dir = tempDir('nerve-read-ahead')
    const good = join(dir, 'a.json')
    const missing = join(dir, 'b-missing.json')
    const broken = join(dir, 'c.json.gz')
    writeFileSync(good, '{"a":1}')
    writeFileSync(broken, Buffer.concat([gzipSync('{"b":2}').subarray(0, 12), Buffer.from('not gzip')]))
    const open = readAhead(openMaybeGzipped, [good, missing, broken], 1 << 20)
    expect((await bytesOf(await open(good))).toString()).toBe('{"a":1}')
    await expect(open(missing)).rejects.toThrow(/ENOENT/)
    await expect(bytesOf(await open(broken))).rejects.toThrow()
    expect((await bytesOf(await open(good))).toString()).toBe('{"a":1}')
    open.close()
  })

  it('holds the error of a broken .gz read ahead until that file is read (none thrown unheard before)', async () => {
    const dir = tempDir('nerve-read-ahead')
    const good = join(dir, 'a.json')
    const broken = join(dir, 'b.json.gz')
    writeFileSync(good, '{"a":1}')
    writeFileSync(broken, 'not gzip at all')
    const open = readAhead(openMaybeGzipped, [good, broken], 1 << 20)
    expect((await bytesOf(await open(good))).toString()).toBe('{"a":1}')
    // The gunzip of the file read ahead fails while nothing reads it yet: before, that error was
    // emitted at once on a stream no one listened to, an uncaught exception (vitest fails on it).
    await sleep(200)
    await expect(bytesOf(await open(broken))).rejects.toMatchObject({ code: 'Z_DATA_ERROR' })
    open.close()
  })
})

describe('openMaybeGzipped', () => {
  it('gunzips in chunks of gunzipChunkBytes, not zlib’s default 16 KiB', async () => {
    const path = join(tempDir('nerve-read-gz'), 'big.json.gz')
    const bytes = randomBytes(1 << 20)
    writeFileSync(path, gzipSync(bytes))
    const sizes: number[] = []
    const chunks: Buffer[] = []
    for await (const chunk of await openMaybeGzipped(path)) {
      sizes.push((chunk as Buffer).length)
      chunks.push(chunk as Buffer)
    }
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true)
    expect(gunzipChunkBytes).toBeGreaterThan(16 * 1024)
    expect(Math.max(...sizes)).toBe(gunzipChunkBytes)
  })

  it('reports a missing .gz file when it is read, without reading its first bytes at open', async () => {
    const missing = join(tempDir('nerve-read-gz'), 'gone.json.gz')
    const stream = await openMaybeGzipped(missing)
    await expect(bytesOf(stream)).rejects.toThrow(/ENOENT/)
  })

  it('still tells gzip by its first bytes when the name does not say so', async () => {
    const path = join(tempDir('nerve-read-gz'), 'log.json')
    writeFileSync(path, gzipSync('{"a":1}\n'))
    expect((await bytesOf(await openMaybeGzipped(path))).toString()).toBe('{"a":1}\n')
  })
})
