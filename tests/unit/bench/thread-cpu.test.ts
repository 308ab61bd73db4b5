// The pipeline bench's reading of another process's threads from /proc: the bytes they wrote, the main
// thread apart (Linux only: elsewhere there is nothing to read and the figures are zero).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readWrittenBytes, writtenPerItem } from '../../../bench/thread-cpu.ts'
import { tempDir } from '../../helpers/random-names.ts'

describe.skipIf(process.platform !== 'linux')('thread cpu', () => {
  it('counts the bytes the main thread writes to a file', () => {
    const before = readWrittenBytes(process.pid)
    writeFileSync(join(tempDir('nerve-thread-io'), 'a.bin'), Buffer.alloc(1024 * 1024))
    const after = readWrittenBytes(process.pid)
    expect(after.main - before.main).toBeGreaterThanOrEqual(1024 * 1024)
    expect(after.others).toBeGreaterThanOrEqual(before.others)
  })

  it('prints KB written per item, main thread apart', () => {
    const line = writtenPerItem({ main: 0, others: 0 }, { main: 3 * 1024 * 10, others: 11 * 1024 * 10 }, 10)
    expect(line).toBe('14.0 KB written per event (main 3.0, other threads 11.0)')
  })

  it('reads nothing of a process that is not there', () => {
    expect(readWrittenBytes(2 ** 22 + 1)).toEqual({ main: 0, others: 0 })
  })
})
