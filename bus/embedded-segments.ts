// How the embedded bus's file (embedded-storage.ts) lays out records: in segments, one row per run of
// consecutive offsets of a partition written by one write() (at most `segmentRecords`), their JSON texts
// joined by newlines (JSON.stringify never writes a raw newline) and their keys as a JSON array. One insert
// per partition per transaction instead of one per record halves the CPU of a publish's SQLite work (about
// 10 → 5 µs per 2 KB event), and the values fill whole pages.

/** Most records in one segment: a read from disk (a consumer catching up) splits at most this many. */
export const segmentRecords = 256

// The segments that can hold offsets [from, to): last_offset >= from and first_offset < to. As no segment
// holds more than segmentRecords, last_offset < to - 1 + segmentRecords bounds the index range above too;
// without it the search went through every segment after the range (a backlog) to check its first_offset.
/** Parameters: topic, partition, from, to - 1 + segmentRecords, to. */
export const segmentsInRangeSql = `SELECT first_offset, last_offset, keys, vals FROM segments
  WHERE topic_id = ? AND partition = ? AND last_offset >= ? AND last_offset < ? AND first_offset < ?
  ORDER BY last_offset`
/** Parameters: topic, partition, from, to - 1 + segmentRecords, to, time. */
export const firstPublishedSinceSql = `SELECT first_offset FROM segments
  WHERE topic_id = ? AND partition = ? AND last_offset >= ? AND last_offset < ? AND first_offset < ?
  AND published_at >= ? ORDER BY last_offset LIMIT 1`

export type SegmentRow = { first_offset: number; last_offset: number; keys: string; vals: string }
export type OpenSegment = { first: number; last: number; keys: string[]; vals: string[] }

/** A segment's keys and JSON texts, one of each per offset from its first. */
export function splitSegment(segment: SegmentRow): { keys: string[]; vals: string[] } {
  return {
    keys: JSON.parse(segment.keys) as string[],
    vals: segment.first_offset === segment.last_offset ? [segment.vals] : segment.vals.split('\n'),
  }
}
