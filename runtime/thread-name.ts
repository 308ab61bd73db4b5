// A worker thread's name in the OS, so that `top -H`, /proc and `npm run bench` (bench/thread-cpu.ts sums
// CPU by thread name) tell nerve's stage threads apart: Node names none of them, every one is `node`.
// Linux only (/proc/thread-self/comm, which a thread may write for itself); elsewhere nothing happens.
import { writeFileSync } from 'node:fs'

/** Linux keeps at most 15 bytes of a thread's name. */
export const threadNameBytes = 15

/** Names the calling thread (cut to 15 bytes); a label only, so a system without /proc is not an error. */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', Buffer.from(name).subarray(0, threadNameBytes))
  } catch {
    // Not Linux, or /proc not mounted: the thread keeps its name.
  }
}
