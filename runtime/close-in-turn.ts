// A stage's close() ends its own threads and files whatever fails before them: a store writer thread left
// running keeps `nerve run` from exiting, and an open file keeps its lock. Each step runs in turn, the next
// even when one before it failed; the first failure is reported once the last step ran.

/** Runs each step in turn, every one even after a failure; rejects with the first failure after the last. */
export async function closeInTurn(steps: ReadonlyArray<() => unknown>): Promise<void> {
  let failure: { err: unknown } | undefined
  for (const step of steps) {
    try {
      await step()
    } catch (err) {
      failure ??= { err }
    }
  }
  if (failure) throw failure.err
}
