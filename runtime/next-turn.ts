// Where work cut into parts (a large body's decode, its publish in parts) waits between two parts: each
// waiter resumes on a turn of the event loop of its own, in the order they asked. Callbacks queued with
// setImmediate all run in the same check phase, before the loop polls for I/O again, so three large bodies
// that each yielded with setImmediate ran a part of each, back to back, in one stretch that /healthz and
// every other request waited behind. Here a single immediate resumes one waiter per turn, and the loop polls
// for I/O between any two parts, however many requests are cut into parts at once.
const waiting: (() => void)[] = []
let scheduled = false

const resumeOne = () => {
  scheduled = false
  const resume = waiting.shift()
  // Queued now, it runs on the next turn: after this waiter's part (its continuation runs right after this
  // callback, as microtasks) and after the loop has polled for I/O.
  if (waiting.length > 0) schedule()
  resume?.()
}

const schedule = () => {
  scheduled = true
  setImmediate(resumeOne)
}

/**
 * Resolves on a later turn of the event loop, no other waiter of nextTurn() resuming on the same turn.
 * `first`: ahead of those waiting, on the very next turn. The embedded bus's next transaction of a group
 * commit waits so: every sender's publish and every consumer's commit wait on that group, and behind fifty
 * bodies cut into parts it would wait fifty turns between two of its transactions.
 */
export function nextTurn(first = false): Promise<void> {
  return new Promise((resolve) => {
    if (first) waiting.unshift(resolve)
    else waiting.push(resolve)
    if (!scheduled) schedule()
  })
}
