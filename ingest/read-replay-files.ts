// Files → raw JSON items for `nerve replay`: JSON, JSON arrays, NDJSON, `.gz` (by name or magic bytes),
// log files {"Records":[…]}, EventBridge events, Falco and CloudTrail mixed in one file (the decoder tells
// them apart per item). NDJSON is streamed line by line, so a file need not fit in one string; a document
// spread over several lines (pretty-printed JSON) is read whole. For long inputs a progress line goes to
// the injected writer (stderr in the CLI) every `progressEveryItems` items and after each file.
import { createReadStream, statSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { type JsonItem, splitJsonItems } from './split-json-items.ts'

export type ReplayFile = { file: string; items: JsonItem[] }

export type ReplayReadOptions = {
  maxDepth: number
  /** Receives progress lines (no newline) for inputs of at least `progressMinBytes`. */
  progress?: (line: string) => void
  progressMinBytes?: number
  progressEveryItems?: number
}

export async function readReplayFiles(
  paths: readonly string[],
  options: ReplayReadOptions,
): Promise<ReplayFile[]> {
  const { progressMinBytes = 32 * 1024 * 1024, progressEveryItems = 100_000 } = options
  const totalBytes = paths.reduce((sum, p) => sum + statSync(p).size, 0)
  const report = options.progress && totalBytes >= progressMinBytes ? options.progress : undefined
  const files: ReplayFile[] = []
  let itemsSoFar = 0
  for (const [n, file] of paths.entries()) {
    const say = (items: number) =>
      report?.(
        `replay: file ${n + 1}/${paths.length} ${file}: ${(itemsSoFar + items).toLocaleString('en')} items read`,
      )
    const items = await readFileItems(file, options.maxDepth, (count) => {
      if (count % progressEveryItems === 0) say(count)
    })
    say(items.length)
    itemsSoFar += items.length
    files.push({ file, items })
  }
  return files
}

async function readFileItems(
  file: string,
  maxDepth: number,
  onItem: (count: number) => void,
): Promise<JsonItem[]> {
  const items: JsonItem[] = []
  const pending: string[] = []
  let mode = 'unknown' as 'unknown' | 'lines' | 'document'
  const limits = { maxItems: Number.POSITIVE_INFINITY, maxDepth }
  const add = (item: JsonItem) => {
    // The items are fresh objects of splitJsonItems: numbered across the file in place, not copied.
    item.index = items.length
    item.file = file
    items.push(item)
    onItem(items.length)
  }
  const addLine = (line: string) => {
    if (mode === 'document') {
      pending.push(line)
      return
    }
    if (line.trim() === '') return
    if (mode === 'unknown') mode = isCompleteJson(line) ? 'lines' : 'document'
    if (mode === 'lines') for (const item of splitJsonItems(line, limits)) add(item)
    else pending.push(line)
  }
  await forEachLine(await openMaybeGzipped(file), addLine)
  if (mode === 'document') for (const item of splitJsonItems(pending.join('\n'), limits)) add(item)
  return items
}

/**
 * Calls `onLine` for every line of the stream without its ending (\n, \r\n or a lone \r, as node:readline
 * splits them). Large chunks cut with indexOf: readline's event per line costs more than parsing the line.
 */
async function forEachLine(stream: Readable, onLine: (line: string) => void): Promise<void> {
  stream.setEncoding('utf8')
  let rest = ''
  for await (const chunk of stream) {
    const text = rest + (chunk as string)
    let start = 0
    let cr = text.indexOf('\r')
    for (;;) {
      const lf = text.indexOf('\n', start)
      if (cr !== -1 && cr < start) cr = text.indexOf('\r', start)
      const end = cr !== -1 && (lf === -1 || cr < lf) ? cr : lf
      // A \r ending the chunk may be the first half of a \r\n: wait for the next chunk.
      if (end === -1 || (end === cr && end === text.length - 1)) break
      onLine(text.slice(start, end))
      start = end === cr && text.charCodeAt(end + 1) === 10 ? end + 2 : end + 1
    }
    rest = text.slice(start)
  }
  if (rest !== '') onLine(rest.endsWith('\r') ? rest.slice(0, -1) : rest)
}

function isCompleteJson(line: string): boolean {
  try {
    JSON.parse(line)
    return true
  } catch {
    return false
  }
}

async function openMaybeGzipped(file: string): Promise<Readable> {
  const head = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    createReadStream(file, { start: 0, end: 1 })
      .on('data', (c) => chunks.push(c as Buffer))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject)
  })
  const gzipped = file.endsWith('.gz') || (head[0] === 0x1f && head[1] === 0x8b)
  const raw = createReadStream(file, { highWaterMark: 1 << 20 })
  return gzipped ? raw.pipe(createGunzip()) : raw
}
