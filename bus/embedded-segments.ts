// How the embedded bus's file (embedded-storage.ts) lays out records: in segments, one row per run of
// consecutive offsets of a partition written by one write() (at most `segmentRecords`), their JSON texts
// joined by newlines (JSON.stringify never writes a raw newline) and their keys as a JSON array. One insert
// per partition per transaction instead of one per record halves the CPU of a publish's SQLite work (about
// 10 → 5 µs per 2 KB event), and the values fill whole pages.
//
// `raws` says where each record's `raw` lies in its text (BusRecord.rawSpan: ingest wrote a CloudTrail
// event around its record's text), for a reader that does not read `raw` (the correlate thread): null when
// no record of the segment has one, else a JSON array of the segment's first offset, then a start and an
// end per record (0, 0 for a record without one: a text starts with `{`). The first offset ties the spans
// to the records they were written for: a nerve that predates the column trims a segment's keys and vals
// (retention) without them, and they then name other records: they are not used.
import type { RawSpan } from './bus.ts'

/** Most records in one segment: a read from disk (a consumer catching up) splits at most this many. */
export const segmentRecords = 256

// The segments that can hold offsets [from, to): last_offset >= from and first_offset < to. As no segment
// holds more than segmentRecords, last_offset < to - 1 + segmentRecords bounds the index range above too;
// without it the search went through every segment after the range (a backlog) to check its first_offset.
/** Parameters: topic, partition, from, to - 1 + segmentRecords, to. */
export const segmentsInRangeSql = `SELECT first_offset, last_offset, keys, vals, raws FROM segments
  WHERE topic_id = ? AND partition = ? AND last_offset >= ? AND last_offset < ? AND first_offset < ?
  ORDER BY last_offset`
/** Parameters: topic, partition, from, to - 1 + segmentRecords, to, time. */
export const firstPublishedSinceSql = `SELECT first_offset FROM segments
  WHERE topic_id = ? AND partition = ? AND last_offset >= ? AND last_offset < ? AND first_offset < ?
  AND published_at >= ? ORDER BY last_offset LIMIT 1`

export type SegmentRow = {
  first_offset: number
  last_offset: number
  keys: string
  vals: string
  raws: string | null
}
/** A segment being written; `raws` as stored (first offset, then a start and an end per record), if any. */
export type OpenSegment = { first: number; last: number; keys: string[]; vals: string[]; raws?: number[] }

/** A segment's keys and JSON texts, one of each per offset from its first. */
export function splitSegment(segment: SegmentRow): { keys: string[]; vals: string[] } {
  return {
    keys: JSON.parse(segment.keys) as string[],
    vals: segment.first_offset === segment.last_offset ? [segment.vals] : segment.vals.split('\n'),
  }
}

/** Adds a record to a segment's spans (after its keys and vals), starting them at its first with one. */
export function addRawSpan(segment: OpenSegment, span: RawSpan | undefined): void {
  if (span === undefined) {
    segment.raws?.push(0, 0)
    return
  }
  if (segment.raws === undefined) {
    segment.raws = [segment.first]
    for (let i = 1; i < segment.keys.length; i++) segment.raws.push(0, 0)
  }
  segment.raws.push(span.start, span.end)
}

/** A segment's `raws` column as written. */
export const rawsColumn = (segment: OpenSegment): string | null =>
  segment.raws === undefined ? null : JSON.stringify(segment.raws)

/**
 * A segment's stored spans (first offset, then a start and an end per record), or undefined when it has
 * none or they were not written for its records as they stand.
 */
export function segmentRawSpans(segment: SegmentRow): number[] | undefined {
  if (segment.raws === null) return undefined
  const spans = JSON.parse(segment.raws) as number[]
  const count = segment.last_offset - segment.first_offset + 1
  return spans[0] === segment.first_offset && spans.length === 1 + 2 * count ? spans : undefined
}

/** The spans of a segment trimmed to start at its `cut`-th record, as its `raws` column. */
export function trimmedRaws(spans: number[] | undefined, first: number, cut: number): string | null {
  if (spans === undefined) return null
  const kept = spans.slice(1 + 2 * cut)
  return kept.some((n) => n !== 0) ? JSON.stringify([first, ...kept]) : null
}

/**
 * A record's text with null as its `raw`, where its span says `raw` is; the text as it is when the span is
 * none (0, 0) or does not fit the text (its member's key not right before it, not an object's `{` … `}`,
 * no `,` or `}` right after).
 */
export function withoutRaw(text: string, start: number, end: number): string {
  if (start < 6 || end <= start || end >= text.length || !text.startsWith('"raw":', start - 6)) return text
  // `raw` is a CloudTrail record: an object, from its `{` to its `}`.
  if (text.charCodeAt(start) !== 123 || text.charCodeAt(end - 1) !== 125) return text
  const after = text.charCodeAt(end)
  if (after !== 44 && after !== 125) return text // `,` or `}`
  return `${text.slice(0, start)}null${text.slice(end)}`
}
