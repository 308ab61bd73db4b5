// Files and dirs a process names with its pid (`revoke-target-key.<pid>.….tmp`, `nerve-replay-<pid>-…`) are its own while it runs; after a crash or
// a kill -9 they are left behind, and the next start tells them from a live process's by that pid.

/**
 * Whether process `pid` may still run and use what it named after itself: it runs (EPERM: another user's),
 * and is not this one. This process removes what it names before it ends, so a name with its pid was left by
 * an earlier process that had the same pid (a container started again), unless this process made it and
 * still uses it: callers skip their own (replay-spill-dir.ts). Only ESRCH says a process is gone.
 * A process in another pid namespace (another container on a shared volume) is not seen from this one:
 * callers that may share a dir across containers need a second guard.
 */
export function processMayRun(pid: number): boolean {
  if (pid === process.pid || !Number.isInteger(pid) || pid < 1 || pid > 0x7fffffff) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}
