// The time in a CloudTrail log file's name, and `--since` / `--until` as bounds on it. CloudTrail names
// each file `<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz` after the time it was
// written (its records are from up to about 15 minutes before), under `…/<region>/<YYYY>/<MM>/<DD>/`.
import { NerveError } from '../runtime/errors.ts'
import { parseGivenTime, quotedGiven } from '../runtime/parse-given-time.ts'

const stamp = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_[^/]*$/

/** Epoch ms of the time in a CloudTrail file name (or key), if it has one. */
export function fileTime(name: string): number | undefined {
  const m = stamp.exec(name)
  if (!m) return undefined
  const [, y, mo, d, h, mi] = m.map(Number) as number[]
  const time = Date.UTC(y as number, (mo as number) - 1, d, h, mi)
  return Number.isNaN(time) ? undefined : time
}

export type TimeWindow = { since?: number; until?: number }

/** True when the name's time is within [since, until), or the name has no time (Falco files, say). */
export function inWindow(name: string, window: TimeWindow): boolean {
  const time = fileTime(name)
  if (time === undefined) return true
  return (
    (window.since === undefined || time >= window.since) &&
    (window.until === undefined || time < window.until)
  )
}

/** `--since` / `--until`: an ISO 8601 date or date and time (UTC unless it says otherwise), the whole value. */
export function parseTimeBound(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined
  const time = parseGivenTime(text)
  if (time === undefined)
    throw new NerveError(
      'INPUT_INVALID',
      `${option} takes an ISO 8601 date such as 2026-11-01 or 2026-11-01T06:00Z (UTC unless it names an offset), not ${quotedGiven(text)}.`,
    )
  return time
}
