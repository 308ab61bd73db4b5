import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const randomName = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`

/** A fresh directory under the OS temp dir. */
export const tempDir = (prefix = 'nerve-test'): string => mkdtempSync(join(tmpdir(), `${prefix}-`))
