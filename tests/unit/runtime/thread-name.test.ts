// A thread names itself in the OS (Linux), cut to the 15 bytes Linux keeps, and names no other thread.
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { threadNames, threadsNamed } from '../../helpers/thread-names.ts'

const linux = threadNames() !== undefined

describe('nameThisThread', () => {
  it.skipIf(!linux)(
    'names the calling thread only, cut to 15 bytes (Linux only: skipped elsewhere)',
    async () => {
      const url = new URL('../../../runtime/thread-name.ts', import.meta.url).href
      // A worker as the stages start theirs; it names itself and waits to be looked at.
      const worker = new Worker(
        `const { parentPort } = require('node:worker_threads')
       import('tsx/esm/api')
         .then(({ register }) => register())
         .then(() => import(${JSON.stringify(url)}))
         .then((m) => {
           m.nameThisThread('nerve-a-long-thread-name')
           parentPort.postMessage('named')
         })`,
        { eval: true },
      )
      try {
        await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))
        expect(threadsNamed('nerve-a-long-th')).toBe(1)
        expect(threadNames()?.some((n) => n.startsWith('nerve-a-long-thread'))).toBe(false)
      } finally {
        await worker.terminate()
      }
      expect(threadsNamed('nerve-a-long-th')).toBe(0)
    },
  )
})
