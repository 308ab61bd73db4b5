// The pipeline bench's reading of another process's threads from /proc: the bytes they wrote, by thread
// name as their CPU (Linux only: elsewhere there is nothing to read and the figures are zero).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { readWrittenBytes, writtenPerItem } from '../../../bench/thread-cpu.ts'
import { tempDir } from '../../helpers/random-names.ts'

describe.skipIf(process.platform !== 'linux')('thread cpu (Linux only: skipped elsewhere)', () => {
  it('counts the bytes the main thread writes to a file', () => {
    const before = readWrittenBytes(process.pid)
    writeFileSync(join(tempDir('nerve-thread-io'), 'a.bin'), Buffer.alloc(1024 * 1024))
    const after = readWrittenBytes(process.pid)
    expect((after.get('main') ?? 0) - (before.get('main') ?? 0)).toBeGreaterThanOrEqual(1024 * 1024)
  })

  it("counts a named worker thread's bytes under its name, not the main thread's", async () => {
    const file = join(tempDir('nerve-thread-io'), 'b.bin')
    const before = readWrittenBytes(process.pid)
    const worker = new Worker(
      `const { writeFileSync } = require('node:fs')
      const { parentPort, workerData } = require('node:worker_threads')
      require('node:fs').writeFileSync('/proc/thread-self/comm', 'nerve-io-test')
      writeFileSync(workerData, Buffer.alloc(2 * 1024 * 1024))
      parentPort.postMessage('written')
      setTimeout(() => {}, 60_000)`,
      { eval: true, workerData: file },
    )
    await new Promise((resolve) => worker.once('message', resolve))
    const after = readWrittenBytes(process.pid)
    await worker.terminate()
    expect((after.get('nerve-io-test') ?? 0) - (before.get('nerve-io-test') ?? 0)).toBeGreaterThanOrEqual(
      2 * 1024 * 1024,
    )
    expect((after.get('main') ?? 0) - (before.get('main') ?? 0)).toBeLessThan(2 * 1024 * 1024)
  })

  it('prints KB written per item by thread, the largest first', () => {
    const before = new Map([['main', 1024]])
    const after = new Map([
      ['main', 1024 + 3 * 1024 * 10],
      ['nerve-store', 8 * 1024 * 10],
      ['nerve-sqlite', 3 * 1024 * 10],
      ['node', 0],
    ])
    expect(writtenPerItem(before, after, 10)).toBe(
      '14.0 KB written per event (nerve-store 8.0, main 3.0, nerve-sqlite 3.0)',
    )
  })

  it('reads nothing of a process that is not there', () => {
    expect(readWrittenBytes(2 ** 22 + 1).size).toBe(0)
  })
})
