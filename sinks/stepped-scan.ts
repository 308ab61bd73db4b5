// A list of the read API read in bounded steps. A filter no index serves (a rule, a score, a revoke
// status, a dead letter's component) makes SQLite walk every row under the served filters, whose number
// the watched agent decides; one such statement over 1,000,000 correlations runs for seconds, and nothing
// can interrupt it (better-sqlite3 has no sqlite3_interrupt, and ending the thread leaves the native call
// running to its end). Here each statement walks at most `stepRows` rows of the list's index: a step first
// finds the key of the row `stepRows` further down the index (a walk of the index alone), then reads or
// counts the matching rows between that key and the last step's, newest first. Between steps `stopped` is
// asked, so a read stopped from outside ends within one step. Pages, totals and cursors are those of one
// statement over the whole list: the steps partition the (time, id) order, which every list's table keeps
// unique (an id primary key, or the correlations' unique (edge_time, id)); with duplicate keys a count would
// come out short. Pure SQL building and a loop over the connection it is given; one read's steps share a
// snapshot when the caller runs them in one transaction (store-reader.worker.mjs).
import type Database from 'better-sqlite3'
import type { Cursor } from '../runtime/list-query.ts'

/** Rows of a list's index one statement walks at most: the longest a stopped read runs on. */
export const defaultStepRows = 4096

/** A list read by steps: its table, the filters its index serves, and the ones checked on each row. */
export type Scan = {
  /** The table and its alias: `correlations t`. */
  table: string
  alias: string
  /** The sort column: lists are newest first by (time, id), and an index serves that order. */
  time: string
  /**
   * Equalities an index serves in (time, id) order, as (agent_id, time DESC, id DESC) or (incident_id,
   * status, time DESC, id DESC).
   */
  keys?: { column: string; value: string }[]
  /** Inclusive bounds on the time. */
  since?: number
  until?: number
  /** Only rows after this one (older), as a page's cursor. */
  cursor?: Cursor
  /** Conditions checked on each row the step walks, with their parameters. */
  checked: string[]
  params: (string | number)[]
}

/** A (time, id) key; a range is [lower, upper): the lower key included, the upper one not. */
type Key = [number, string]
type Range = { lower?: Key; upper?: Key }

export type SteppedScans = {
  /** The first `limit` matching rows, newest first, as `select` reads them. */
  rows<Row>(scan: Scan, select: string, limit: number): Row[]
  /** How many rows match. */
  count(scan: Scan): number
}

export type SteppedScanOptions = {
  /** For tests: steps of a few rows, so that a small store is read in many. */
  stepRows?: number
  /** Asked before each step: throws to end the read (the reader thread's stop flag). */
  checkStop?: () => void
}

export function createSteppedScans(db: Database.Database, opts: SteppedScanOptions = {}): SteppedScans {
  const step = opts.stepRows ?? defaultStepRows
  const statements = new Map<string, Database.Statement>()
  const prepared = (sql: string) => {
    const known = statements.get(sql)
    if (known) return known
    const s = db.prepare(sql)
    statements.set(sql, s)
    return s
  }
  /** Visits the list's steps, newest first, until `each` says it has enough. */
  const walk = (scan: Scan, each: (range: Range, full: boolean) => boolean) => {
    let { lower, upper } = firstRange(scan)
    for (;;) {
      opts.checkStop?.()
      const at = boundarySql(scan, { lower, upper })
      const edge = prepared(at.sql)
        .raw()
        .get(...at.params, step - 1) as Key | undefined
      const more = each({ lower: edge ?? lower, upper }, edge !== undefined)
      if (!edge || !more) return
      upper = edge
    }
  }
  return {
    rows<Row>(scan: Scan, select: string, limit: number) {
      const found: Row[] = []
      walk(scan, (range) => {
        const { sql, params } = rangeSql(scan, range, select, 'rows')
        found.push(...(prepared(sql).all(...params, limit - found.length) as Row[]))
        return found.length < limit
      })
      return found
    },
    count(scan) {
      // A whole table, unfiltered: SQLite counts an index's entries page by page without reading a row
      // (0.15 µs each: 150 ms at 1,000,000), where steps walk each entry (about 4 times as long).
      const range = firstRange(scan)
      if (!scan.keys?.length && !range.lower && !range.upper && scan.checked.length === 0) {
        opts.checkStop?.()
        return (prepared(`SELECT count(*) AS n FROM ${scan.table}`).get() as { n: number }).n
      }
      let n = 0
      walk(scan, (range, full) => {
        // Every row the step walked passes the served filters: with nothing else to check, a full step
        // holds exactly `step` of them.
        if (full && scan.checked.length === 0) n += step
        else {
          const { sql, params } = rangeSql(scan, range, '1', 'count')
          n += (prepared(sql).get(...params, step) as { n: number }).n
        }
        return true
      })
      return n
    },
  }
}

/**
 * The range the whole list spans: `until` as the key just past its time (ids are text, '' the least), a
 * cursor when it is the nearer, `since` as the key of its time with the least id. A bound on each side, so
 * that the index walk is narrowed by both.
 */
function firstRange(scan: Scan): Range {
  const range: Range = {}
  if (scan.until !== undefined) range.upper = [scan.until + 1, '']
  if (scan.cursor && (scan.until === undefined || scan.cursor.time <= scan.until))
    range.upper = [scan.cursor.time, scan.cursor.id]
  if (scan.since !== undefined) range.lower = [scan.since, '']
  return range
}

/** The served filters and the range, as SQL over the list's index. */
function servedSql(scan: Scan, range: Range) {
  const a = scan.alias
  const where: string[] = []
  const params: (string | number)[] = []
  for (const key of scan.keys ?? []) {
    where.push(`${a}.${key.column} = ?`)
    params.push(key.value)
  }
  if (range.upper) {
    where.push(`(${a}.${scan.time}, ${a}.id) < (?, ?)`)
    params.push(...range.upper)
  }
  if (range.lower) {
    where.push(`(${a}.${scan.time}, ${a}.id) >= (?, ?)`)
    params.push(...range.lower)
  }
  return { where, params }
}

const whereOf = (where: string[]) => (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '')
const order = (scan: Scan) => ` ORDER BY ${scan.alias}.${scan.time} DESC, ${scan.alias}.id DESC`

/** The key of the row a step further down the index; its OFFSET (the step less one) is the last parameter. */
export function boundarySql(scan: Scan, range: Range) {
  const { where, params } = servedSql(scan, range)
  const a = scan.alias
  return {
    sql: `SELECT ${a}.${scan.time}, ${a}.id FROM ${scan.table} ${a}${whereOf(where)}${order(scan)} LIMIT 1 OFFSET ?`,
    params,
  }
}

/**
 * A step's matching rows, newest first, or their number; the LIMIT is the last parameter. The count is
 * taken over the rows in the index's order so that SQLite walks the same index as the boundary.
 */
export function rangeSql(scan: Scan, range: Range, select: string, what: 'rows' | 'count') {
  const served = servedSql(scan, range)
  const a = scan.alias
  const sql = `SELECT ${select} FROM ${scan.table} ${a}${whereOf([...served.where, ...scan.checked])}${order(scan)} LIMIT ?`
  return {
    sql: what === 'rows' ? sql : `SELECT count(*) AS n FROM (${sql})`,
    params: [...served.params, ...scan.params],
  }
}
