// A wait with an end: for a stop that must go on when what it waits for does not (a batch that never ends,
// a coordinator that does not answer, a thread stuck in a loop). The work itself is not cancelled.

/** True once `work` settled (resolved or rejected), false when `ms` passed first. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const settled = work.then(
    () => true,
    () => true,
  )
  try {
    return await Promise.race([settled, late])
  } finally {
    clearTimeout(timer)
  }
}
