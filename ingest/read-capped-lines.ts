// The lines of a replay input, each at most `maxLineBytes`: a longer one (a log file decompressed past
// the cap, a file with no newline) is not read into memory. Its first bytes are kept to show, the rest
// is passed over as it streams by, and it comes out as a LineTooLong in its place, with its line number.
// Node.js cannot make a string past 512 MiB, and crashed with a message naming neither file nor line.

/** A line over the cap, in place of its text: its 1-based number in the input and its first bytes. */
export type LineTooLong = { tooLong: true; lineNumber: number; head: string }

/**
 * The longest line replay reads: as large as the S3 + SQS reader's default ingest.s3_sqs.max_object_bytes,
 * since a CloudTrail log file is one line, and half of what Node.js can hold as one string.
 */
export const maxReplayLineBytes = 256 * 1024 * 1024

const headBytes = 200

/**
 * The lines of the stream without their endings (\n, \r\n or a lone \r, as node:readline splits them), a
 * chunk's worth at a time. The bytes are cut before they are decoded, each line on its own (no UTF-8
 * sequence holds a \n or \r byte): decoding a whole chunk first, then cutting the string, cost more than
 * parsing the lines. A line spanning chunks is carried over as bytes, up to `maxLineBytes`.
 */
export async function* readCappedLines(
  stream: AsyncIterable<unknown>,
  maxLineBytes: number,
): AsyncGenerator<(string | LineTooLong)[]> {
  /** The start of a line the chunks so far did not end. */
  let carried: Buffer[] = []
  let carriedBytes = 0
  /** The line being passed over, once it went past the cap. */
  let skipping: LineTooLong | undefined
  /** Lines ended so far. */
  let ended = 0
  /** The last chunk ended with a \r: a \n opening the next one completes that \r\n. */
  let afterCr = false
  const tooLong = (first: Buffer): LineTooLong => ({
    tooLong: true,
    lineNumber: ended + 1,
    head: first.subarray(0, headBytes).toString('utf8'),
  })
  /** Adds bytes to the unended line: carried while under the cap, else passed over. */
  const carry = (bytes: Buffer) => {
    if (skipping) return
    if (carriedBytes + bytes.length <= maxLineBytes) {
      carried.push(bytes)
      carriedBytes += bytes.length
      return
    }
    skipping = tooLong(carried[0] ?? bytes)
    carried = []
    carriedBytes = 0
  }
  const line = (bytes: Buffer, start: number, end: number): string | LineTooLong => {
    // Most lines lie within one chunk: decoded in place, no Buffer made for them.
    if (carried.length === 0 && !skipping && end - start <= maxLineBytes) {
      ended++
      return bytes.toString('utf8', start, end)
    }
    // Counted once carried: the piece that ends a line may be what takes it over the cap.
    carry(bytes.subarray(start, end))
    ended++
    const done = skipping ?? (carried.length === 1 ? carried[0] : Buffer.concat(carried))
    skipping = undefined
    carried = []
    carriedBytes = 0
    return Buffer.isBuffer(done) ? done.toString('utf8') : (done ?? '')
  }
  for await (const chunk of stream) {
    const bytes = chunk as Buffer
    if (bytes.length === 0) continue
    const lines: (string | LineTooLong)[] = []
    let start: number = afterCr && bytes[0] === 10 ? 1 : 0
    afterCr = false
    let cr: number = bytes.indexOf(13, start)
    for (;;) {
      const lf = bytes.indexOf(10, start)
      if (cr !== -1 && cr < start) cr = bytes.indexOf(13, start)
      const end: number = cr !== -1 && (lf === -1 || cr < lf) ? cr : lf
      if (end === -1) break
      lines.push(line(bytes, start, end))
      start = end === cr && bytes[end + 1] === 10 ? end + 2 : end + 1
      afterCr = end === cr && end === bytes.length - 1
    }
    if (start < bytes.length) carry(bytes.subarray(start))
    yield lines
  }
  if (carried.length > 0 || skipping) yield [line(Buffer.alloc(0), 0, 0)]
}
