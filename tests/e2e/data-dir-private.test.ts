// The data dir holds raw events (command lines, ARNs, access key ids) and the ingest token: a `nerve run`
// leaves nothing in it readable by another local user, including files an older version left at 0644.
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type NerveProcess, startNerve } from '../helpers/nerve-process.ts'
import { tempDir } from '../helpers/random-names.ts'

const fixtures = resolve(import.meta.dirname, '../fixtures')
const alert = readFileSync(join(fixtures, 'falco/falcosecurity-plugins.ndjson'), 'utf8')
  .split('\n')
  .find((l) => l.includes('Read sensitive file untrusted')) as string

let nerve: NerveProcess | undefined
afterEach(async () => {
  await nerve?.stop()
  nerve = undefined
})

function modes(dir: string): { path: string; mode: number; dir: boolean }[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).map((e) => {
    const path = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)
    return { path, mode: statSync(path).mode & 0o777, dir: e.isDirectory() }
  })
}

describe('data dir at rest', () => {
  it('is 0700 with every file 0600 while nerve runs, old world-readable files included', async () => {
    const dataDir = join(tempDir('nerve-private'), 'data')
    mkdirSync(dataDir, { recursive: true, mode: 0o755 })
    writeFileSync(join(dataDir, 'left-by-older-version.ndjson'), `${alert}\n`, { mode: 0o644 })
    chmodSync(dataDir, 0o755)
    nerve = await startNerve(['run'], {
      NERVE_DATA_DIR: dataDir,
      NERVE_INGEST_TOKEN: 'nrv_private-token-0123456789ab',
    })
    const res = await fetch(`${nerve.url}/v1/falco`, {
      method: 'POST',
      headers: { authorization: `Bearer ${nerve.token}`, 'content-type': 'application/json' },
      body: alert.replace(/"time":"[^"]+"/, `"time":"${new Date().toISOString()}"`),
    })
    expect(res.status).toBe(202)
    expect(statSync(dataDir).mode & 0o777).toBe(0o700)
    const entries = modes(dataDir)
    expect(entries.length).toBeGreaterThan(2)
    for (const e of entries)
      expect({ path: e.path, mode: e.mode.toString(8) }).toEqual({
        path: e.path,
        mode: e.dir ? '700' : '600',
      })
  })
})
