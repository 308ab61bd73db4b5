import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveIngestToken } from '../../../runtime/ingest-token.ts'
import { tempDir } from '../../helpers/random-names.ts'

const dirs: string[] = []
const newDir = (): string => {
  const dir = tempDir('nerve-token')
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('the ingest token', () => {
  it('is generated once, stored 0600, and reused', () => {
    const dir = newDir()
    const first = resolveIngestToken(undefined, dir)
    expect(first.source).toBe('generated')
    expect(first.token).toMatch(/^nrv_[A-Za-z0-9_-]{32}$/)
    expect(statSync(join(dir, 'ingest-token')).mode & 0o777).toBe(0o600)
    expect(resolveIngestToken(undefined, dir)).toMatchObject({ token: first.token, source: 'stored' })
    expect(readFileSync(join(dir, 'ingest-token'), 'utf8').trim()).toBe(first.token)
  })

  // A crash between the file's creation and its write leaves it empty; an empty token is matched by an
  // empty `?token=`. A stored token shorter than ingest.token's minimum is refused, naming the file.
  it.each([
    ['empty', ''],
    ['blank', ' \n'],
    ['too short', 'abc\n'],
  ])('refuses a stored token that is %s', (_what, text) => {
    const dir = newDir()
    resolveIngestToken(undefined, dir)
    writeFileSync(join(dir, 'ingest-token'), text)
    expect(() => resolveIngestToken(undefined, dir)).toThrow(/ingest-token holds \d+ characters; at least 16/)
  })
})
