// A trail as `nerve replay` meets it in backfills: hourly CloudTrail log files (`{"Records":[…]}`,
// gzip, named as CloudTrail names them) and hourly Falco NDJSON, built from the replay fixture's agent
// session (tests/fixtures/replay: 25 CloudTrail records of role `tester`, the alerts of pod
// default/alpine) shifted by whole hours, with fresh event ids. Each file's records are shuffled (a
// file need not be in time order), and the session's records are padded to `recordsPerFile` with
// read-only noise from the Stratus Red Team detonation logs. Seeded: the same arguments give the same files.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { seededRandom, uuidFrom } from './seeded-random.ts'

type Json = Record<string, unknown>

const fixtures = join(import.meta.dirname, '../fixtures')
const trailFile = 'replay/123456789012_CloudTrail_us-west-2_20210410T1930Z_tester.json.gz'
/** The hour the fixture's session starts in. */
const fixtureHour = Date.UTC(2021, 3, 10, 19)

export type HourlyTrailOptions = {
  hours: number
  /** CloudTrail records per hourly file (at least the session's 25). */
  recordsPerFile?: number
  /** The first hour, epoch ms. */
  start?: number
  seed?: number
  /** Adds, per hour, an exact copy of one record (a duplicate delivery) and a record at the same time. */
  ties?: boolean
}

export function writeHourlyTrail(dir: string, options: HourlyTrailOptions): string[] {
  const random = seededRandom(options.seed ?? 7)
  const session = (
    JSON.parse(gunzipSync(readFileSync(join(fixtures, trailFile))).toString()) as { Records: Json[] }
  ).Records
  const noise = readFileSync(join(fixtures, 'cloudtrail/stratus-red-team-detonation-logs.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Json)
    .filter((r) => r.readOnly === true)
  const alerts = readFileSync(join(fixtures, 'replay/falco-alerts.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .slice(0, 2)
  const start = options.start ?? Date.UTC(2026, 10, 1)
  const perFile = Math.max(options.recordsPerFile ?? 25, session.length)
  const files: string[] = []
  for (let h = 0; h < options.hours; h++) {
    const shift = start + h * 3_600_000 - fixtureHour
    const records: Json[] = session.map((r, n) => ({
      ...r,
      eventTime: iso(Date.parse(r.eventTime as string) + shift),
      eventID: uuid(`${h}-${n}`),
    }))
    for (let n = records.length; n < perFile; n++) {
      const template = noise[Math.floor(random() * noise.length)] as Json
      records.push({
        ...template,
        eventTime: iso(start + h * 3_600_000 + Math.floor(random() * 3_600) * 1000),
        eventID: uuid(`${h}-noise-${n}`),
      })
    }
    if (options.ties) {
      records.push({ ...(records[3] as Json) })
      records.push({ ...(records[4] as Json), eventID: uuid(`${h}-tie`), eventName: 'GetCallerIdentity' })
    }
    for (let n = records.length - 1; n > 0; n--) {
      const k = Math.floor(random() * (n + 1))
      ;[records[n], records[k]] = [records[k] as Json, records[n] as Json]
    }
    const stamp = iso(start + h * 3_600_000)
      .replace(/[-:]/g, '')
      .slice(0, 13)
    const trail = join(
      dir,
      `123456789012_CloudTrail_us-west-2_${stamp}Z_${uuid(`f${h}`).slice(0, 16)}.json.gz`,
    )
    writeFileSync(trail, gzipSync(JSON.stringify({ Records: records })))
    const falco = join(dir, `falco-${stamp}.ndjson`)
    writeFileSync(falco, `${alerts.map((line) => shiftAlert(line, shift)).join('\n')}\n`)
    files.push(trail, falco)
  }
  return files
}

/** The alert `shift` ms later: its `time` and its 19-digit `evt.time` (kept as text: JSON.parse rounds it). */
function shiftAlert(line: string, shift: number): string {
  return line
    .replace(/"evt\.time":(\d+)/, (_, ns: string) => `"evt.time":${BigInt(ns) + BigInt(shift) * 1_000_000n}`)
    .replace(
      /"time":"([^".]+)(\.\d+)?Z"/,
      (_, s: string, frac = '') => `"time":"${iso(Date.parse(`${s}Z`) + shift).slice(0, 19)}${frac}Z"`,
    )
}

const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`

const uuid = (seed: string): string => uuidFrom(`hourly-trail-${seed}`)

/** The same items in a seeded random order. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items]
  let s = seed
  for (let n = out.length - 1; n > 0; n--) {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0
    const k = s % (n + 1)
    ;[out[n], out[k]] = [out[k] as T, out[n] as T]
  }
  return out
}
