import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { decodeReplayFiles } from '../../../ingest/decode-replay-files.ts'
import {
  type ReplayPart,
  type ReplayReadOptions,
  readReplayParts,
} from '../../../ingest/read-replay-files.ts'
import type { JsonItem } from '../../../ingest/split-json-items.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { fixtures } from './ingest-harness.ts'

const read = (path: string) => readFileSync(join(fixtures, path), 'utf8')

/** Every part read, joined back into one list of items per file. */
async function readReplayFiles(paths: string[], options: ReplayReadOptions): Promise<ReplayPart[]> {
  const files: ReplayPart[] = []
  for await (const part of readReplayParts(paths, options)) {
    const last = files.at(-1)
    if (last?.file === part.file) last.items.push(...part.items)
    else files.push({ file: part.file, items: [...part.items] })
  }
  return files
}

describe('readReplayFiles', () => {
  it('reads NDJSON, pretty-printed documents and .gz, with Falco and CloudTrail mixed per item', async () => {
    const dir = tempDir('nerve-replay')
    const mixed = join(dir, 'mixed.ndjson.gz')
    const falco = read('falco/falco-website.ndjson').trim().split('\n')
    const cloudtrail = read('cloudtrail/aws-samples-eks-pod-identity.ndjson').trim().split('\n')
    writeFileSync(mixed, gzipSync([falco[19], cloudtrail[2], falco[9], cloudtrail[0]].join('\n')))
    const files = [
      mixed,
      join(fixtures, 'cloudtrail/envelopes/s3-log-file-awsdocs-example.json'),
      join(fixtures, 'cloudtrail/envelopes/eventbridge-aws-api-call-via-cloudtrail-awsdocs.json'),
      join(
        fixtures,
        'cloudtrail/envelopes/123456789012_CloudTrail_us-east-2_20160714T1920Z_EXAMPLEa1b2c3d4e.json.gz',
      ),
    ]
    const replay = await readReplayFiles(files, { maxDepth: 64 })
    expect(replay.map((f) => f.items.length)).toEqual([4, 1, 1, 1])
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const decoded = decoder.decode(
      'any',
      replay.flatMap((f) => f.items),
      { via: 'replay', receivedAt: 0 },
    )
    expect(decoded.invalid).toEqual([])
    expect(replay[1]?.items[0]?.file).toBe(files[1])
    expect(decoded.events.map((e) => e.side)).toEqual([
      'edge',
      'core',
      'edge',
      'core',
      'core',
      'core',
      'core',
    ])
    expect(decoded.events.every((e) => e.via === 'replay')).toBe(true)
  })

  it('names the file of a rejected item, and applies links learned in a later file (and part) to earlier ones', async () => {
    const dir = tempDir('nerve-replay')
    const podIdentity = read('cloudtrail/aws-samples-eks-pod-identity.ndjson').trim().split('\n')
    const use = JSON.parse(
      read('cloudtrail/stratus-red-team-detonation-logs.ndjson').split('\n')[0] as string,
    )
    use.userIdentity.accessKeyId = 'ASIA37QFXJP5MQOWRZ6Q'
    use.eventTime = '2024-04-16T10:00:00Z'
    const first = join(dir, 'uses.ndjson')
    const second = join(dir, 'issuers.ndjson')
    writeFileSync(first, `${JSON.stringify(use)}\n{"eventTime":"soon"}\n`)
    writeFileSync(second, `${podIdentity[2]}\n`)
    // One item per part: the issuing record is normalized two parts after the call it stitches.
    const decoded = await decodeReplayFiles(
      [first, second],
      { agents: [], revoke: { self_identities: [] } },
      { maxDepth: 64, partItems: 1, keepRaw: () => false },
    )
    expect(decoded.events[0]?.agent).toEqual({ id: 'ns-a/app1', resolved_by: 'stitched' })
    expect(decoded.invalid.map((i) => [i.file, i.index])).toEqual([[first, 1]])
    // Nothing downstream reads these records: they were dropped once normalized.
    expect(decoded.events.map((e) => e.raw)).toEqual([null, null])
  })

  it('keeps the raw record of the events that keepRaw names', async () => {
    const file = join(tempDir('nerve-replay'), 'mixed.ndjson')
    const falco = read('falco/falco-website.ndjson').trim().split('\n')
    const cloudtrail = read('cloudtrail/aws-samples-eks-pod-identity.ndjson').trim().split('\n')
    writeFileSync(file, [falco[19], cloudtrail[0]].join('\n'))
    const decoded = await decodeReplayFiles(
      [file],
      { agents: [], revoke: { self_identities: [] } },
      { maxDepth: 64, keepRaw: (e) => e.side === 'core' },
    )
    expect(decoded.events.map((e) => [e.side, e.raw === null])).toEqual([
      ['edge', true],
      ['core', false],
    ])
    expect(decoded.events[1]?.raw).toEqual(JSON.parse(cloudtrail[0] as string))
  })

  it('hands a log file of more records than a part on in parts of its own, between the lines around it', async () => {
    const dir = tempDir('nerve-replay')
    const path = join(dir, 'mixed.ndjson')
    const falco = read('falco/falco-website.ndjson').trim().split('\n')
    const records = read('cloudtrail/aws-samples-eks-pod-identity.ndjson').trim().split('\n').slice(0, 5)
    const logFile = `{"Records":[${records.join(',')}]}`
    writeFileSync(path, `${[falco[1], falco[2], logFile, falco[3], falco[4], falco[5]].join('\n')}\n`)
    const parts: { index: number; records?: number; from?: number }[][] = []
    for await (const part of readReplayParts([path], { maxDepth: 32, partItems: 3 }))
      parts.push(
        part.items.map((item) => {
          if (item.error !== undefined) return { index: item.index }
          const logRecords = (item.value as { Records?: unknown[] }).Records
          return logRecords
            ? { index: item.index, records: logRecords.length, from: item.recordsFrom }
            : { index: item.index }
        }),
      )
    expect(parts).toEqual([
      [{ index: 0 }, { index: 1 }],
      [{ index: 2, records: 3, from: 0 }],
      [{ index: 2, records: 2, from: 3 }],
      [{ index: 3 }, { index: 4 }, { index: 5 }],
    ])
  })

  it('rejects a broken or too deep pretty-printed log file once, naming the file, as its one-line form', async () => {
    const dir = tempDir('nerve-replay')
    const records = read('cloudtrail/aws-samples-eks-pod-identity.ndjson').trim().split('\n').slice(0, 6)
    const deep = `${'{"a":'.repeat(70)}1${'}'.repeat(70)}`
    const prettyPrinted = (lines: string[]) => `{\n  "Records": [\n    ${lines.join(',\n    ')}\n  ]\n}`
    const files = {
      // A record cut short in the middle, the records after it whole: each one a line.
      broken: prettyPrinted([
        ...records.slice(0, 2),
        '{"eventVersion": "1.08", "eventName":',
        ...records.slice(3),
      ]),
      // Cut short after a record, as a copy that stopped: the last line is a whole record.
      cut: prettyPrinted(records).slice(0, prettyPrinted(records).indexOf(records[4] as string) - 6),
      // Written with indent=2, nested past the limit.
      deep: JSON.stringify({ Records: [JSON.parse(records[0] as string), JSON.parse(deep)] }, null, 2),
    }
    for (const [name, text] of Object.entries(files)) {
      const pretty = join(dir, `${name}.json`)
      const oneLine = join(dir, `${name}-one-line.json`)
      writeFileSync(pretty, `${text}\n`)
      writeFileSync(oneLine, `${text.replace(/\n */g, '')}\n`)
      const [one, several] = await readReplayFiles([oneLine, pretty], { maxDepth: 64 })
      // Why, without where: the positions and the text quoted around them differ between the forms.
      const why = (item: JsonItem | undefined) => item?.error?.replace(/ at position \d+.*|, \.\.\..*/s, '')
      expect(
        several?.items.map((item) => [item.file, why(item)]),
        name,
      ).toEqual([[pretty, why(one?.items[0])]])
      expect(one?.items, name).toHaveLength(1)
    }
  })

  it('reads NDJSON whose first line is cut short as lines, rejecting only that one', async () => {
    const path = join(tempDir('nerve-replay'), 'alerts.ndjson')
    const falco = read('falco/falco-website.ndjson').trim().split('\n').slice(0, 3)
    const first = falco[0] as string
    // Inside a string, and between a member's name and its value.
    for (const cut of [first.slice(0, 40), first.slice(0, first.indexOf('"priority"') + 11)]) {
      writeFileSync(path, `${cut}\n\n${falco.join('\n')}\n`)
      const [file] = await readReplayFiles([path], { maxDepth: 64 })
      expect(
        file?.items.map((item) => item.error?.slice(0, 14) ?? 'ok'),
        cut,
      ).toEqual(['not valid JSON', 'ok', 'ok', 'ok'])
    }
  })

  it('reads NDJSON whose first two lines are broken as lines, keeping every good line after them', async () => {
    const path = join(tempDir('nerve-replay'), 'alerts.ndjson')
    const falco = read('falco/falco-website.ndjson').trim().split('\n').slice(0, 3)
    const first = falco[0] as string
    // Cut between a member's name and its value: the line opens a document it never closes.
    const cut = first.slice(0, first.indexOf('"priority"') + 11)
    const shape = (item: JsonItem) =>
      item.error?.slice(0, 14) ?? (item.value as { rule?: string }).rule?.slice(0, 9) ?? item.value
    const alerts = falco.map((line) => JSON.parse(line).rule.slice(0, 9))
    const cases: [string, unknown[]][] = [
      [`${cut}\n${cut}\n${falco.join('\n')}`, ['not valid JSON', 'not valid JSON', ...alerts]],
      [`${cut}\n-- log rotated --\n${falco.join('\n')}`, ['not valid JSON', 'not valid JSON', ...alerts]],
      [`${cut}\n[1]\n${falco.join('\n')}`, ['not valid JSON', 1, ...alerts]],
      // The only good line last: no other line shows the file is NDJSON.
      [`${cut}\n-- log rotated --\n${falco[2]}`, ['not valid JSON', 'not valid JSON', alerts[2]]],
    ]
    for (const [text, expected] of cases) {
      writeFileSync(path, `${text}\n`)
      const [file] = await readReplayFiles([path], { maxDepth: 64 })
      expect(file?.items.map(shape), text.slice(0, 200)).toEqual(expected)
    }
  })

  it('reads NDJSON of JSON arrays behind a broken first line as lines, keeping every good line', async () => {
    const path = join(tempDir('nerve-replay'), 'alerts.ndjson')
    const falco = read('falco/falco-website.ndjson').trim().split('\n').slice(0, 3)
    const rules = falco.map((line) => JSON.parse(line).rule.slice(0, 9))
    const arrays = [`[${falco[0]}, ${falco[1]}]`, `[${falco[2]}]`]
    const first = arrays[0] as string
    const shape = (item: JsonItem) =>
      item.error?.slice(0, 14) ?? (item.value as { rule: string }).rule.slice(0, 9)
    // The first line cut between a member's name and its value, after a comma, after the array's bracket.
    const at = first.indexOf('"priority"')
    for (const cut of [first.slice(0, at + 11), first.slice(0, at), first.slice(0, 1)]) {
      writeFileSync(path, `${cut}\n${arrays.join('\n')}\n${arrays.join('\n')}\n`)
      const [file] = await readReplayFiles([path], { maxDepth: 64 })
      expect(file?.items.map(shape), cut.slice(-20)).toEqual(['not valid JSON', ...rules, ...rules])
    }
  })

  it('rejects a cut-short document of a value a line once, making up no event from its lines', async () => {
    const dir = tempDir('nerve-replay')
    const records = read('cloudtrail/aws-samples-eks-pod-identity.ndjson').trim().split('\n').slice(0, 3)
    const files = {
      // A log file cut short: its first record on the line after `"Records": [`, the others after a comma.
      log: `{"Records": [\n  ${records.join('\n, ')}\n`,
      array: `[\n  ${records.join('\n, ')}\n`,
      // Its record one a line, the file cut short before its last brace.
      closed: `{"Records": [\n  ${records[0]}\n]\n`,
    }
    for (const [name, text] of Object.entries(files)) {
      const path = join(dir, `${name}.json`)
      writeFileSync(path, text)
      const [file] = await readReplayFiles([path], { maxDepth: 64 })
      expect(
        file?.items.map((item) => [item.file, item.error?.slice(0, 14)]),
        name,
      ).toEqual([[path, 'not valid JSON']])
    }
  })

  it('reads NDJSON whose only good line is last, after a broken line ending in a comma, a bracket or a colon', async () => {
    const path = join(tempDir('nerve-replay'), 'alerts.ndjson')
    const falco = read('falco/falco-website.ndjson').trim().split('\n').slice(0, 3)
    const first = falco[0] as string
    const at = first.indexOf('"priority"')
    const colon = first.slice(0, at + 11)
    const comma = first.slice(0, at)
    const bracket = `${first.slice(0, first.indexOf('"output_fields"'))}"tags": [`
    const last = JSON.parse(falco[2] as string).rule.slice(0, 9)
    const shape = (item: JsonItem) =>
      item.error?.slice(0, 14) ?? (item.value as { rule: string }).rule.slice(0, 9)
    for (const broken of [
      [colon, comma],
      [comma, colon],
      [colon, bracket],
      [comma, comma, comma],
    ]) {
      writeFileSync(path, `${broken.join('\n')}\n${falco[2]}\n`)
      const [file] = await readReplayFiles([path], { maxDepth: 64 })
      expect(file?.items.map(shape), broken.map((line) => line.slice(-12)).join(' | ')).toEqual([
        ...broken.map(() => 'not valid JSON'),
        last,
      ])
    }
  })

  it('reads a document whose values stand on lines of their own whole, and rejects it once when broken', async () => {
    const dir = tempDir('nerve-replay')
    const records = read('cloudtrail/aws-samples-eks-pod-identity.ndjson').trim().split('\n').slice(0, 4)
    // Two log files in an array, one record a line: each log file's last record is a line of its own.
    const logFile = (lines: string[]) => `  {\n    "Records": [\n      ${lines.join(',\n      ')}\n    ]\n  }`
    const array = `[\n${logFile(records.slice(0, 2))},\n${logFile(records.slice(2))}\n]`
    // A member's value on the line after its name.
    const member = `{\n  "Records":\n    [\n      ${records[0]}\n    ]\n}`
    const broken = array.replace(records[1] as string, '{"eventVersion": "1.08", "eventName":')
    const files = { array, member, broken }
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, `${name}.json`), `${text}\n`)
    const read3 = await readReplayFiles(
      Object.keys(files).map((name) => join(dir, `${name}.json`)),
      { maxDepth: 64 },
    )
    expect(read3.map((file) => file.items.map((item) => item.error?.slice(0, 14) ?? 'ok'))).toEqual([
      ['ok', 'ok'],
      ['ok'],
      ['not valid JSON'],
    ])
  })

  it('streams a file whose first line is no JSON: its parts come before the file is read to its end', async () => {
    const path = join(tempDir('nerve-replay'), 'alerts.ndjson')
    writeFileSync(path, '')
    const falco = read('falco/falco-website.ndjson').trim().split('\n')
    const cut = (falco[0] as string).slice(0, (falco[0] as string).indexOf('"priority"') + 11)
    // The first lines, and why the one rejection they make.
    const firsts: Record<string, [string[], RegExp]> = {
      banner: [['-- log rotated --'], /^not valid JSON/],
      'cut first line': [[cut], /^not valid JSON/],
      // Opens a document, then more than the 16 KiB cap of lines, none an object: let go as a long line is.
      'document past the cap': [
        ['{"a": [', ...Array.from({ length: 600 }, (_, n) => `  "line ${n} of a long document",`)],
        /: a document over several lines is longer than 0.015625 MiB \(PAYLOAD_TOO_LARGE\)/,
      ],
    }
    for (const [name, [first, why]] of Object.entries(firsts)) {
      let chunksRead = 0
      const lines = [...first, ...falco, ...falco, ...falco]
      const open = async () =>
        Readable.from(
          (function* () {
            for (const line of lines) {
              chunksRead++
              yield Buffer.from(`${line}\n`)
            }
          })(),
        )
      const items: JsonItem[] = []
      const options = { maxDepth: 64, partItems: 5, open, maxLineBytes: 16 * 1024 }
      for await (const part of readReplayParts([path], options)) {
        items.push(...part.items)
        if (items.length >= 6) break
      }
      expect(chunksRead, name).toBeLessThan(lines.length)
      expect(items[0]?.error, name).toMatch(why)
      expect(
        items.slice(1).map((item) => (item.value as { rule?: string }).rule),
        name,
      ).toEqual(falco.slice(0, items.length - 1).map((line) => JSON.parse(line).rule))
    }
  })

  it('closes the file when its reader stops before the end (an item failed, a thread stopped)', async () => {
    const dir = tempDir('nerve-replay')
    const path = join(dir, 'alerts.ndjson')
    writeFileSync(path, '')
    const lines = Array.from({ length: 100 }, (_, n) => `{"n":${n}}\n`)
    let stream: Readable | undefined
    const open = async () => {
      // A chunk per line, and more to come: the reader stops long before the end.
      stream = Readable.from(lines.map((l) => Buffer.from(l)))
      return stream
    }
    for await (const part of readReplayParts([path], { maxDepth: 32, partItems: 5, open })) {
      expect(part.items).toHaveLength(5)
      break
    }
    expect(stream?.destroyed).toBe(true)
  })

  it('writes progress lines for long inputs through the injected writer', async () => {
    const dir = tempDir('nerve-replay')
    const file = join(dir, 'big.ndjson')
    const line = read('falco/falco-website.ndjson').trim().split('\n')[19]
    writeFileSync(file, `${Array(2500).fill(line).join('\n')}\n`)
    const progress: string[] = []
    await readReplayFiles([file], {
      maxDepth: 64,
      progress: (l) => progress.push(l),
      progressMinBytes: 1,
      progressEveryItems: 1000,
    })
    expect(progress).toEqual([
      `replay: file 1/1 ${file}: 1,000 items read`,
      `replay: file 1/1 ${file}: 2,000 items read`,
      `replay: file 1/1 ${file}: 2,500 items read`,
    ])
    const quiet: string[] = []
    await readReplayFiles([file], { maxDepth: 64, progress: (l) => quiet.push(l) })
    expect(quiet).toEqual([])
    // A count that is a multiple of the step is written once.
    writeFileSync(file, `${Array(2000).fill(line).join('\n')}\n`)
    const even: string[] = []
    const every = { progressMinBytes: 1, progressEveryItems: 1000 }
    await readReplayFiles([file], { maxDepth: 64, progress: (l) => even.push(l), ...every })
    expect(even).toEqual([
      `replay: file 1/1 ${file}: 1,000 items read`,
      `replay: file 1/1 ${file}: 2,000 items read`,
    ])
  })

  it('ends lines at \n, \r\n and a lone \r, also when a \r\n straddles two chunks of the file', async () => {
    const dir = tempDir('nerve-replay')
    const lines = join(dir, 'endings.ndjson')
    const falco = read('falco/falco-website.ndjson').trim().split('\n')
    writeFileSync(lines, `${falco[0]}\r\n${falco[1]}\r${falco[2]}\n\r\n${falco[3]}\r`)
    const [ndjson] = await readReplayFiles([lines], { maxDepth: 64 })
    expect(ndjson?.items.map((i) => [i.index, i.original()])).toEqual(falco.slice(0, 4).map((l, n) => [n, l]))
    // A pretty-printed document whose first \r\n sits across the 1 MiB read boundary.
    const document = join(dir, 'document.json')
    const value = 'x'.repeat((1 << 20) - 14)
    const text = `{\r\n  "a": "${value}",\r\n  "b": 1\r\n}\r\n`
    expect(text.indexOf('\r\n', 3)).toBe((1 << 20) - 1)
    writeFileSync(document, text)
    const [whole] = await readReplayFiles([document], { maxDepth: 64 })
    expect(whole?.items.map((i) => i.original())).toEqual([`{\n  "a": "${value}",\n  "b": 1\n}`])
  })

  it('decodes UTF-8 characters cut by the 1 MiB read boundary, in lines spanning several chunks', async () => {
    const file = join(tempDir('nerve-replay'), 'utf8.ndjson')
    const first = { output: `${'x'.repeat((1 << 20) - 12)}é café` }
    const second = { output: '🦅'.repeat(300_000) }
    const bytes = Buffer.from(`${JSON.stringify(first)}\n${JSON.stringify(second)}\r\n`)
    // An é's second byte opens the second MiB; an eagle's fourth byte opens the third.
    expect(bytes[1 << 20]).toBe(0xa9)
    expect(bytes[1 << 21]).toBe(0x85)
    writeFileSync(file, bytes)
    const [ndjson] = await readReplayFiles([file], { maxDepth: 64 })
    expect(ndjson?.items.map((i) => i.value)).toEqual([first, second])
  })
})
