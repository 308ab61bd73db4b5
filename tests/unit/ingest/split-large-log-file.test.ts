import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { splitLargeArray, splitLargeLogFile } from '../../../ingest/split-large-log-file.ts'
import { fixtures } from './ingest-harness.ts'

const records = readFileSync(join(fixtures, 'cloudtrail/aws-samples-eks-pod-identity.ndjson'), 'utf8')
  .trim()
  .split('\n')
const logFile = `{"Records": [ ${records.join(' ,')} ]}`

describe('splitLargeLogFile', () => {
  it('gives the records splitJsonItems gives, a part at a time, numbered from their place in the file', () => {
    const parts = [...(splitLargeLogFile(logFile, 64, 2) ?? [])]
    const whole = splitJsonItems(logFile, { maxItems: 1, maxDepth: 64 })[0]?.value as { Records: unknown[] }
    expect(parts.map((p) => p.map((item) => (item as { recordsFrom?: number }).recordsFrom))).toEqual(
      records
        .map((_, i) => i)
        .filter((i) => i % 2 === 0)
        .map((i) => [i]),
    )
    expect(parts.flatMap((p) => p.flatMap((item) => (item.value as { Records: unknown[] }).Records))).toEqual(
      whole.Records,
    )
    expect(parts[0]?.[0]?.original()).toBe(logFile)
  })

  it('gives one empty part for a file of no records', () => {
    expect([...(splitLargeLogFile('{"Records":[]}', 64, 2) ?? [])].map((p) => p[0]?.value)).toEqual([
      { Records: [] },
    ])
  })

  it('leaves to splitJsonItems a file that is broken, too deep or more than a log file', () => {
    for (const line of [
      `{"Records":[${records[0]},{"a":]}`,
      `{"Records":[${records[0]},]}`,
      `{"Records":[${records[0]}]`,
      `{"Records":[${records[0]}]} x`,
      `{"Records":[${records[0]},${'['.repeat(63)}${']'.repeat(63)}]}`,
      `[${records[0]}]`,
    ]) {
      expect(splitLargeLogFile(line, 64, 2), line.slice(-20)).toBeUndefined()
    }
  })

  it('gives the records of a log file with members beside Records as its whole parse holds them', () => {
    const [a, b, c] = records as [string, string, string]
    const streamed = (line: string) => {
      const parts = splitLargeLogFile(line, 64, 2)
      return (
        parts &&
        [...parts].flatMap((p) => p.flatMap((item) => (item.value as { Records: unknown[] }).Records))
      )
    }
    // The object, then 63 more: one deeper than 64.
    const deep = `${'{"a":'.repeat(64)}1${'}'.repeat(64)}`
    for (const line of [
      `{"x":1,"Records":[${a},${b},${c}]}`,
      `{"Records":[${a},${b},${c}], "y": {"digestStartTime":"2021-04-10T19:30:00Z","n":[98765432109876543210]}}`,
      ` { "x" : [1,{"}":"]"}] , "Records" : [${a}] , "y" : "\\"" , "z" : null } `,
      // Duplicate keys: the last wins, as JSON.parse has it.
      `{"Records":[${a},${b}],"Records":[${c}]}`,
      `{"Records":5,"Records":[${a}]}`,
      `{"Rec\\u006frds":[${a}]}`,
      `{"x":${deep},"x":0,"Records":[${a}]}`,
      `{"Records":[${deep}],"Records":[${a}]}`,
      `{"priority":"Warning","Records":[${a}]}`,
    ]) {
      const whole = splitJsonItems(line, { maxItems: 1, maxDepth: 64 })[0]?.value as { Records: unknown[] }
      expect(streamed(line), line.slice(0, 40)).toEqual(whole.Records)
    }
    for (const line of [
      `{"Records":[${a}],"Records":5}`,
      `{"x":${deep},"Records":[${a}]}`,
      `{"x":0,"x":${deep},"Records":[${a}]}`,
      `{"Records":[${a}],"Records":[${deep}]}`,
      `{"priority":"Warning","rule":"r","Records":[${a}]}`,
      `{"Records":[${a}],"Rule":"r","priority":1}`,
      `{"Records":[${a}],"y":[1,}`,
      `{"Records":[${a}],"y":tru}`,
      `{"Records":[${a}],"y":1,}`,
      `{"Records":[${a}] "y":1}`,
      `{"Records":[${a}],"y":1} x`,
      `{"Records":[${a}],"y":"\\x"}`,
      `{"Records":[${a}],y:1}`,
      `{"x":1}`,
    ]) {
      expect(streamed(line), line.slice(-30)).toBeUndefined()
    }
  })

  it('checks a member beside Records of many values a part at a time, never parsing it whole', () => {
    const [a, b] = records as [string, string]
    const streamed = (line: string) => {
      const parts = splitLargeLogFile(line, 64, 2)
      return (
        parts &&
        [...parts].flatMap((p) => p.flatMap((item) => (item.value as { Records: unknown[] }).Records))
      )
    }
    // 100,000 values (200 KB of text): more than a part, in the shapes a member may hold them.
    const many = Array.from({ length: 100_000 }, () => '0').join(',')
    const deep = `${'['.repeat(62)}${']'.repeat(62)}`
    const kept = [
      `{"x":[${many}],"Records":[${a},${b}]}`,
      `{"Records":[${a}],"y":{"n":[${many}],"m":{"k":[[${many}],[${many},{"a":[1]}]]}}}`,
      `{"x":{ "a" : [ ${many} ] , "b":[ ] , "c":{ } },"Records":[${a}]}`,
      `{"x":[${many},${deep}],"Records":[${a}]}`,
    ]
    const left = [
      // One level too deep, broken inside, not ended where it should.
      `{"x":[${many},[${deep}]],"Records":[${a}]}`,
      `{"x":[${many},],"Records":[${a}]}`,
      `{"x":[${many},tru],"Records":[${a}]}`,
      `{"x":{"n":[${many}],},"Records":[${a}]}`,
      `{"x":{"n":[${many}] "m":1},"Records":[${a}]}`,
      `{"x":{"n":[${many}]]},"Records":[${a}]}`,
      `{"x":[${many}} ,"Records":[${a}]}`,
    ]
    const parse = vi.spyOn(JSON, 'parse')
    try {
      for (const line of kept) {
        const whole = splitJsonItems(line, { maxItems: 1, maxDepth: 64 })[0]?.value as { Records: unknown[] }
        parse.mockClear()
        expect(streamed(line), line.slice(-40)).toEqual(whole.Records)
        const longest = parse.mock.calls.reduce((most, [text]) => Math.max(most, text.length), 0)
        expect(longest, line.slice(-40)).toBeLessThan(65 * 1024)
      }
    } finally {
      parse.mockRestore()
    }
    for (const line of left) {
      expect(splitJsonItems(line, { maxItems: 1, maxDepth: 64 })[0]?.error, line.slice(-40)).toBeDefined()
      expect(streamed(line), line.slice(-40)).toBeUndefined()
    }
  })

  it('gives the items of an array line as splitJsonItems does, deep elements as errors, a part at a time', () => {
    const deep = `${'['.repeat(65)}${']'.repeat(65)}`
    const line = ` [ ${records[0]}, {} ,${deep},"x" , ${records[1]}]`
    const parts = [...(splitLargeArray(line, 64, 2) ?? [])]
    const whole = splitJsonItems(line, { maxItems: 10, maxDepth: 64 })
    expect(parts.map((p) => p.length)).toEqual([2, 2, 1])
    const items = parts.flat()
    expect(items.map((i) => [i.index, i.value, i.error, i.original()])).toEqual(
      whole.map((i) => [i.index, i.value, i.error, i.original()]),
    )
    for (const broken of ['[{},]', '[{}', '[{}] x', '[{"a":]'])
      expect(splitLargeArray(broken, 64, 2)).toBeUndefined()
  })

  it('gives a log file among the elements in parts of its records, numbered as that element', () => {
    const line = `[${records[0]}, ${logFile} ,{"Records":[{},{},{}]}]`
    const parts = [...(splitLargeArray(line, 64, 2) ?? [])]
    expect(parts.map((p) => p.map((i) => [i.index, (i as { recordsFrom?: number }).recordsFrom]))).toEqual([
      [[0, undefined]],
      [[1, 0]],
      [[1, 2]],
      [[1, 4]],
      [[2, 0]],
      [[2, 2]],
    ])
    expect(parts[1]?.[0]?.original()).toBe(logFile)
  })

  it('ends a part after an element of as many records as a part holds, for the caller to cut', () => {
    // A Falco alert to the decoder (priority, rule), so not cut as a log file.
    const line = `[{}, {"priority":"Warning","rule":"r","Records":[{},{}]}, {}, {}]`
    expect([...(splitLargeArray(line, 64, 3) ?? [])].map((p) => p.map((i) => i.index))).toEqual([
      [0, 1],
      [2, 3],
    ])
  })

  it('gives for a log file naming an S3 object that record alone, for the file to be skipped whole', () => {
    const s3 = '{"eventSource":"aws:s3","s3":{"object":{"key":"k"}}}'
    const line = `{"Records":[${records.join(',')},${s3},{}]}`
    const parts = [...(splitLargeLogFile(line, 64, 2) ?? [])]
    expect(parts.map((p) => p.map((i) => i.value))).toEqual([[{ Records: [JSON.parse(s3)] }]])
    expect(parts[0]?.[0]?.original()).toBe(line)
    // A string naming aws:s3 is no such record.
    const named = `{"Records":[{"userAgent":"\\"eventSource\\":\\"aws:s3\\""},{},{}]}`
    expect([...(splitLargeLogFile(named, 64, 2) ?? [])].map((p) => p[0]?.value)).toEqual([
      { Records: [{ userAgent: '"eventSource":"aws:s3"' }, {}] },
      { Records: [{}] },
    ])
  })
})
