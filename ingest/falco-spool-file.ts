// The bytes of one spooled Falco request (falco-spool.ts), written and read a part at a time so that
// neither holds the event loop: NDJSON, a header line then one line per event and per rejected item.
//
//   {"v":2,"component":"falco_receiver","receivedAt":…,"events":N,"invalid":M,"skipped":{…},"internal":K}
//   <event 1> … <event N>
//   <invalid item 1> … <invalid item M>
//
// A 4 MB body spooled whole was one JSON.stringify of about 10 MB and one JSON.parse to drain it: 85–126 ms
// each under load. The header's counts say where the events end and let a file that does not hold them
// all be told apart from a whole one. Files of the previous version (`<seq>.json`, one JSON document) are
// still read, whole, by decodeLegacySpooled.
import type { Decoded } from './decode-events.ts'

export type Spooled = { component: string; receivedAt: number; decoded: Decoded }

type Header = {
  v: 2
  component: string
  receivedAt: number
  events: number
  invalid: number
  skipped: Decoded['skipped']
  internal: number
}

/**
 * Lines serialized or parsed between two turns of the event loop: about 150 KB of Falco events, as many as
 * ingest publishes at a time (parts of 125 lines, 300 KB, were tasks of up to 20 ms under load).
 */
export const spoolPartLines = 64
/**
 * A part also ends once it holds this many bytes (at least one line): the agent writes its alerts' text,
 * and 64 alerts of 40 KB would otherwise be one part of 2.5 MB.
 */
export const spoolPartBytes = 150 * 1024

const newline = 0x0a

/** The file's bytes, in parts; `pause` is awaited between parts. JSON text never holds a raw newline. */
export async function encodeSpooled(entry: Spooled, pause: () => Promise<void>): Promise<Buffer[]> {
  const { decoded } = entry
  const header: Header = {
    v: 2,
    component: entry.component,
    receivedAt: entry.receivedAt,
    events: decoded.events.length,
    invalid: decoded.invalid.length,
    skipped: decoded.skipped,
    internal: decoded.internal,
  }
  const parts = [Buffer.from(`${JSON.stringify(header)}\n`)]
  const lines: readonly unknown[][] = [decoded.events, decoded.invalid]
  for (const items of lines) {
    for (let i = 0; i < items.length; ) {
      await pause()
      let text = ''
      const end = Math.min(items.length, i + spoolPartLines)
      while (i < end && text.length < spoolPartBytes) text += `${JSON.stringify(items[i++])}\n`
      parts.push(Buffer.from(text))
    }
  }
  return parts
}

/** Reads a file encodeSpooled wrote, a part at a time; throws when it is not one whole such file. */
export async function decodeSpooled(data: Buffer, pause: () => Promise<void>): Promise<Spooled> {
  let at = data.indexOf(newline)
  if (at === -1) throw new Error('no header line')
  const header = JSON.parse(data.toString('utf8', 0, at)) as Header
  if (header.v !== 2 || !Number.isInteger(header.events) || !Number.isInteger(header.invalid)) {
    throw new Error('not a spooled request header')
  }
  at++
  const readLines = async (count: number): Promise<unknown[]> => {
    const values: unknown[] = []
    while (values.length < count) {
      await pause()
      const want = Math.min(spoolPartLines, count - values.length)
      let end = at
      for (let n = 0; n < want && end - at < spoolPartBytes; n++) {
        end = data.indexOf(newline, end)
        if (end === -1) throw new Error(`${count - values.length - n} lines missing`)
        end++
      }
      for (const line of data.toString('utf8', at, end - 1).split('\n')) values.push(JSON.parse(line))
      at = end
    }
    return values
  }
  const events = (await readLines(header.events)) as Decoded['events']
  const invalid = (await readLines(header.invalid)) as Decoded['invalid']
  if (at !== data.length) throw new Error('bytes after the last line')
  return {
    component: header.component,
    receivedAt: header.receivedAt,
    decoded: { events, invalid, skipped: header.skipped, internal: header.internal },
  }
}

/** A file of the previous version: the whole request as one JSON document. */
export function decodeLegacySpooled(text: string): Spooled {
  return JSON.parse(text) as Spooled
}
