// node:worker_threads with its Worker wrapped, so that a test finds the workers the code under test starts
// (to end one as a crash would) and can take a message the main thread posts one. vi.mock is hoisted only
// in the test file itself, so each file still names the mock, handing the real module to trackWorkers():
//   vi.mock('node:worker_threads', async (importOriginal) =>
//     (await import('../../helpers/tracked-workers.ts')).trackWorkers(await importOriginal()))
// This file imports node:worker_threads for its types only: the mock's factory imports it.
import type * as WorkerThreads from 'node:worker_threads'

/** Every worker started in this test file, in order, with the file it runs. */
export const spawned: { file: string; worker: WorkerThreads.Worker }[] = []

/** Messages to a worker pass unless `take` says the test took them (then they are not sent). */
export const intercept = { take: (_worker: WorkerThreads.Worker, _message: unknown): boolean => false }

export function trackWorkers(original: typeof WorkerThreads) {
  class Tracked extends original.Worker {
    constructor(...args: ConstructorParameters<typeof original.Worker>) {
      super(...args)
      spawned.push({ file: String(args[0]), worker: this })
    }
    override postMessage(...args: Parameters<InstanceType<typeof original.Worker>['postMessage']>) {
      if (!intercept.take(this, args[0])) super.postMessage(...args)
    }
  }
  return { ...original, default: { ...original, Worker: Tracked }, Worker: Tracked }
}
