// Which decoder of `nerve replay --order time` reads which file, decided without a message: the files
// (in name order) and one shared buffer go to every decoding thread when it starts, and a decoder claims
// a file by setting its flag with Atomics.compareExchange, so each file is read by exactly one. The main
// thread, when it decodes, takes files from the front (what it reads ahead is then the next one), the
// threads from the back through a shared cursor; where the two meet, the first to claim a file has it and
// the other stops there. Each decoder's runs thus cover one stretch of time.
// A thread used to be handed its next file by the main thread, as a message answering its `done`: beside
// a main thread that decodes too (and reads a message only between parts), a thread on small files
// waited for the main thread about as long as it decoded (measured: 500 Falco files of 1.5 KB each took a
// thread 6 s, 28 % of its wall clock busy).

/** A buffer for `count` files: the threads' cursor, then one claim flag per file. */
export function fileClaims(count: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(4 * (count + 1))
  new Int32Array(buffer)[0] = count
  return buffer
}

/** The next file (its index) a decoder taking from the front may read, undefined once there is none. */
export function claimFromFront(buffer: SharedArrayBuffer): () => number | undefined {
  const claims = new Int32Array(buffer)
  const count = claims.length - 1
  let next = 0
  return () => {
    if (next >= count) return undefined
    // Claimed already: a thread came from the back to here, and has every file after it.
    if (Atomics.compareExchange(claims, 1 + next, 0, 1) !== 0) next = count
    return next < count ? next++ : undefined
  }
}

/** The next file (its index) a thread taking from the back may read, undefined once there is none. */
export function claimFromBack(buffer: SharedArrayBuffer): () => number | undefined {
  const claims = new Int32Array(buffer)
  let done = false
  return () => {
    if (done) return undefined
    const at = Atomics.sub(claims, 0, 1) - 1
    // Claimed already: the main thread came from the front to here, and has every file before it.
    done = at < 0 || Atomics.compareExchange(claims, 1 + at, 0, 1) !== 0
    return done ? undefined : at
  }
}
