// Each replay removes the spill dirs that ended replays left (a kill -9), never one still in use: a second
// replay in the same process keeps the first one's, while a dir named with this pid that this process did
// not make (left by an earlier process with the same pid, a container started again) goes.
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { makeSpillDir } from '../../../ingest/replay-spill-dir.ts'
import { tempDir } from '../../helpers/random-names.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

it("keeps the spill dir of a replay of this process when another starts, and removes an earlier pid's", () => {
  const parent = tempDir('nerve-spill')
  dirs.push(parent)
  const earlier = join(parent, `nerve-replay-${process.pid}-e4rl13`)
  mkdirSync(earlier)
  const first = makeSpillDir(parent)
  expect(existsSync(earlier)).toBe(false)
  const second = makeSpillDir(parent)
  expect([existsSync(first), existsSync(second)]).toEqual([true, true])
})
