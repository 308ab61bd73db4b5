// The Falco output text of buffered edge events, kept as bytes in 64 KiB chunks rather than as V8 strings:
// a string the buffer keeps for minutes is copied twice by the young-generation collector and then walked by
// every full collection; bytes in a chunk cost neither, and no string header. Only ASCII text is stored (one
// byte per char, decoded exactly); anything else, or a text longer than a chunk, is refused and the caller
// keeps the string. Entries leave roughly in arrival order, so chunks empty out from the oldest and are
// recycled; when chunks hold much more than the live text (long-lived entries pinning old chunks), the
// sparsest chunk's records are moved to the newest and it is freed.

const chunkBytes = 1 << 16
/** A record: its text length (2 bytes, little-endian), then the text. */
const headerBytes = 2
/** Handles are chunk << 16 | offset in an Int32: past this many chunks (2 GiB), texts stay strings. */
const maxChunks = 0x7fff
/** Chunks may hold this much more than the live records before the sparsest one is emptied. */
const slack = 1 / 32

/** Buffer's own latin1 writer, which write(…, 'latin1') reaches after normalizing its arguments. */
type LatinBuffer = Buffer & { latin1Write(text: string, offset: number, length: number): number }

const recordSize = (length: number) => headerBytes + length

export class TextArena {
  /** Per slot: chunk << 16 | offset of its record, −1 when it has none. */
  private handles: Int32Array
  private readonly chunks: (Buffer | null)[] = []
  /** Live record bytes per chunk. */
  private readonly live: number[] = []
  private readonly freeIndexes: number[] = []
  private spare: Buffer | null = null
  private current = -1
  private fill = chunkBytes
  private held = 0
  private liveBytes = 0

  constructor(capacity: number) {
    this.handles = new Int32Array(capacity).fill(-1)
  }

  grow(capacity: number): void {
    const handles = new Int32Array(capacity).fill(-1)
    handles.set(this.handles)
    this.handles = handles
  }

  /** Stores `text` for `slot`; false when it is not ASCII or too long (the caller keeps the string). */
  put(slot: number, text: string): boolean {
    const length = text.length
    // Without an encoding argument byteLength goes straight to its UTF-8 count: equal to the length only for ASCII.
    if (length > chunkBytes - headerBytes || Buffer.byteLength(text) !== length) return false
    if (this.fill + recordSize(length) > chunkBytes && !this.nextChunk()) return false
    const chunk = this.chunks[this.current] as Buffer
    ;(chunk as LatinBuffer).latin1Write(text, this.fill + headerBytes, length)
    this.place(chunk, slot, length)
    return true
  }

  has(slot: number): boolean {
    return (this.handles[slot] as number) !== -1
  }

  get(slot: number): string {
    const handle = this.handles[slot] as number
    const chunk = this.chunks[handle >>> 16] as Buffer
    const at = handle & 0xffff
    return chunk.toString('latin1', at + headerBytes, at + headerBytes + lengthAt(chunk, at))
  }

  /** What the record of `slot` takes in its chunk (0 without one). */
  bytesOf(slot: number): number {
    const handle = this.handles[slot] as number
    if (handle === -1) return 0
    return recordSize(lengthAt(this.chunks[handle >>> 16] as Buffer, handle & 0xffff))
  }

  /** Frees the record of `slot`; false when it had none. */
  drop(slot: number): boolean {
    const handle = this.handles[slot] as number
    if (handle === -1) return false
    this.handles[slot] = -1
    const index = handle >>> 16
    const size = recordSize(lengthAt(this.chunks[index] as Buffer, handle & 0xffff))
    this.liveBytes -= size
    this.live[index] = (this.live[index] as number) - size
    if (this.live[index] === 0 && index !== this.current) this.release(index)
    return true
  }

  /** Bytes held in chunks (the spare included). */
  bytes(): number {
    return (this.held + (this.spare ? 1 : 0)) * chunkBytes
  }

  private place(chunk: Buffer, slot: number, length: number) {
    chunk[this.fill] = length & 0xff
    chunk[this.fill + 1] = length >>> 8
    this.handles[slot] = (this.current << 16) | this.fill
    const size = recordSize(length)
    this.fill += size
    this.liveBytes += size
    this.live[this.current] = (this.live[this.current] as number) + size
  }

  /** Starts a new current chunk, first emptying sparse chunks when chunks hold too much dead space. */
  private nextChunk(): boolean {
    // Each round frees at least a thirty-third of a chunk: the sparsest chunk is at most 32/33 full.
    while (this.held * chunkBytes > this.liveBytes * (1 + slack) + 2 * chunkBytes && this.evacuateSparsest());
    return this.open()
  }

  private open(): boolean {
    const previous = this.current
    const index = this.freeIndexes.pop() ?? this.chunks.length
    if (index >= maxChunks) return false
    this.chunks[index] = this.spare ?? Buffer.alloc(chunkBytes)
    this.spare = null
    this.live[index] = 0
    this.held++
    this.current = index
    this.fill = 0
    if (previous !== -1 && this.live[previous] === 0) this.release(previous)
    return true
  }

  private release(index: number) {
    if (!this.spare) this.spare = this.chunks[index] as Buffer
    this.chunks[index] = null
    this.held--
    this.freeIndexes.push(index)
  }

  /**
   * Moves the live records of the sparsest chunk to the current one and frees it. Records carry no owner:
   * the owners are found among the handles, a scan as long as the slot arrays, paid only when entries
   * leave far out of arrival order.
   */
  private evacuateSparsest(): boolean {
    let sparsest = -1
    for (let i = 0; i < this.chunks.length; i++) {
      if (i === this.current || this.chunks[i] === null) continue
      if (sparsest === -1 || (this.live[i] as number) < (this.live[sparsest] as number)) sparsest = i
    }
    if (sparsest === -1) return false
    const from = this.chunks[sparsest] as Buffer
    for (let slot = 0; slot < this.handles.length && this.live[sparsest] !== 0; slot++) {
      const handle = this.handles[slot] as number
      if (handle === -1 || handle >>> 16 !== sparsest) continue
      const at = handle & 0xffff
      const length = lengthAt(from, at)
      if (this.fill + recordSize(length) > chunkBytes && !this.open()) return false
      const to = this.chunks[this.current] as Buffer
      from.copy(to, this.fill + headerBytes, at + headerBytes, at + headerBytes + length)
      this.live[sparsest] = (this.live[sparsest] as number) - recordSize(length)
      this.liveBytes -= recordSize(length)
      this.place(to, slot, length)
    }
    if (this.live[sparsest] === 0) this.release(sparsest)
    return true
  }
}

const lengthAt = (chunk: Buffer, at: number) => (chunk[at] as number) | ((chunk[at + 1] as number) << 8)
