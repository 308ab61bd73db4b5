// Files → raw JSON items for `nerve replay`: JSON, JSON arrays, NDJSON, `.gz` (by name or magic bytes),
// log files {"Records":[…]}, EventBridge events, Falco and CloudTrail mixed in one file (the decoder tells
// them apart per item). NDJSON is streamed line by line, so a file need not fit in one string; a document
// spread over several lines (pretty-printed JSON) is read whole. For long inputs a progress line goes to
// the injected writer (stderr in the CLI) every `progressEveryItems` items and after each file.
import { createReadStream, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
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
  const stream = await openMaybeGzipped(file)
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })
  const items: JsonItem[] = []
  const pending: string[] = []
  let mode: 'unknown' | 'lines' | 'document' = 'unknown'
  const limits = { maxItems: Number.POSITIVE_INFINITY, maxDepth }
  const addLine = (line: string) => {
    for (const item of splitJsonItems(line, limits)) {
      items.push({ ...item, index: items.length, file } as JsonItem)
      onItem(items.length)
    }
  }
  for await (const line of lines) {
    if (mode === 'document') {
      pending.push(line)
      continue
    }
    if (line.trim() === '') continue
    if (mode === 'unknown') mode = isCompleteJson(line) ? 'lines' : 'document'
    if (mode === 'lines') addLine(line)
    else pending.push(line)
  }
  if (mode === 'document') {
    for (const item of splitJsonItems(pending.join('\n'), limits)) {
      items.push({ ...item, file })
      onItem(items.length)
    }
  }
  return items
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
  const raw = createReadStream(file)
  return gzipped ? raw.pipe(createGunzip()) : raw
}
