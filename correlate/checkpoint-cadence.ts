// When the correlate stage saves a partition's checkpoint: after `max_records` records of the partition or
// `max_interval` of wall time since its last save, whichever comes first (correlation.checkpoint). A save
// rewrites what changed since the one before (the touched agents' baseline and incidents rows, the
// buffered entries added and removed), so saving every few thousand records instead of after every batch
// writes an agent seen in ten batches once, and never writes an entry that came and went in between.
// Pure: the stage passes the offsets and the time.

export type CheckpointCadence = { maxRecords: number; maxIntervalMs: number }

/** What the stage knows of a partition's progress. */
export type SaveProgress = {
  /** Offset of the last record handled. */
  offset: number
  /** Offset of the last record the durable checkpoint includes. */
  saved: number
  /** When it was saved (or the partition restored), in the stage's clock. */
  savedAt: number
}

/** True when the partition has handled records its checkpoint lacks and one of the limits is reached. */
export function saveDue(cadence: CheckpointCadence, p: SaveProgress, now: number): boolean {
  if (p.offset <= p.saved) return false
  return p.offset - p.saved >= cadence.maxRecords || now - p.savedAt >= cadence.maxIntervalMs
}
