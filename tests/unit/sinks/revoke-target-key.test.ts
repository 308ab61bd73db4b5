// The data dir's revoke target key: made whole or not at all, read only from a regular file nerve made,
// and made again (with a warning) when a crash left it empty, since a lost key only keeps the targets a 410
// disabled disabled.
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { readRevokeTargetKey } from '../../../sinks/revoke-target-key.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

/**
 * Another process on the same data dir, which links its key into place just before this one does; and the
 * paths an unlink (EPERM: an immutable file) or a listing (EACCES: a data dir of mode 0300) is refused.
 */
const other = vi.hoisted(() => ({
  key: undefined as Buffer | undefined,
  undeletable: new Set<string>(),
  unlistable: new Set<string>(),
}))
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  const linkSync: typeof fs.linkSync = (existing, path) => {
    if (other.key) fs.writeFileSync(path, other.key, { mode: 0o600, flag: 'wx' })
    other.key = undefined
    fs.linkSync(existing, path)
  }
  const unlinkSync: typeof fs.unlinkSync = (path) => {
    if (other.undeletable.has(String(path)))
      throw Object.assign(new Error(`EPERM: operation not permitted, unlink '${path}'`), { code: 'EPERM' })
    fs.unlinkSync(path)
  }
  const readdirSync = ((path: string, options?: object) => {
    if (other.unlistable.has(String(path)))
      throw Object.assign(new Error(`EACCES: permission denied, scandir '${path}'`), { code: 'EACCES' })
    return fs.readdirSync(path, options as never)
  }) as typeof fs.readdirSync
  const mocked = { linkSync, unlinkSync, readdirSync }
  return { ...fs, ...mocked, default: { ...fs, ...mocked } }
})

const made: string[] = []
afterEach(() => {
  other.undeletable.clear()
  other.unlistable.clear()
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function dataDir() {
  const dir = tempDir('nerve-target-key')
  made.push(dir)
  return { dir, path: join(dir, 'revoke-target-key') }
}

const hourAgo = () => new Date(Date.now() - 3_600_000)

/** The pid of a process that has ended (a child run and reaped): what a crashed nerve's pid is at the next start. */
const endedPid = () => spawnSync(process.execPath, ['-e', '']).pid as number

/** A temp file as linkNewKey() names it, written by process `pid` and not linked, an hour old: its name. */
function leaveTemp(dir: string, pid: number, hex: string): string {
  const name = `revoke-target-key.${pid}.${hex}.tmp`
  writeFileSync(join(dir, name), Buffer.alloc(32, 3), { mode: 0o600 })
  utimesSync(join(dir, name), hourAgo(), hourAgo())
  return name
}

/** Two temp files as crashes leave them (written, not linked, their processes ended), an hour old: their names. */
function leaveStaleTemps(dir: string): string[] {
  return [leaveTemp(dir, endedPid(), '0a1b2c3d4e5f'), leaveTemp(dir, endedPid(), 'ffeeddccbbaa')]
}

const refusal = (what: RegExp) =>
  expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(what) })

describe('the revoke target key', () => {
  it('is made on the first start, owner-only, with no temp file left, and read back the same', () => {
    const { dir, path } = dataDir()
    const rt = createTestRuntime()
    const key = readRevokeTargetKey(dir, rt.log)
    expect(key.length).toBe(32)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readdirSync(dir)).toEqual(['revoke-target-key'])
    expect(readRevokeTargetKey(dir, rt.log).equals(key)).toBe(true)
    expect(rt.logs).toEqual([expect.objectContaining({ level: 'info', found: 'missing' })])
  })

  it('is made again, with a warning, when a crash left an empty file', () => {
    const { dir, path } = dataDir()
    writeFileSync(path, '')
    const rt = createTestRuntime()
    const key = readRevokeTargetKey(dir, rt.log)
    expect(key.length).toBe(32)
    expect(readFileSync(path).equals(key)).toBe(true)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(rt.logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        found: 'empty',
        msg: expect.stringMatching(/^Made a new revoke target key/),
      }),
    )
  })

  it('refuses a symbolic link, dangling or to a 32-byte file planted elsewhere, naming the fix', () => {
    const dangling = dataDir()
    symlinkSync(join(dangling.dir, 'nowhere'), dangling.path)
    expect(() => readRevokeTargetKey(dangling.dir)).toThrow(refusal(/is a symbolic link; remove it/))

    const planted = dataDir()
    writeFileSync(join(planted.dir, 'planted'), Buffer.alloc(32, 7))
    symlinkSync(join(planted.dir, 'planted'), planted.path)
    expect(() => readRevokeTargetKey(planted.dir)).toThrow(refusal(/is a symbolic link/))
  })

  it('refuses a file of another size, which is not a key nerve made', () => {
    const { dir, path } = dataDir()
    writeFileSync(path, Buffer.alloc(7, 1), { mode: 0o600 })
    expect(() => readRevokeTargetKey(dir)).toThrow(refusal(/holds 7 bytes, not 32\. Delete it/))
  })

  it('tightens a key readable by others to 0600 and warns, keeping the key', () => {
    const { dir, path } = dataDir()
    writeFileSync(path, Buffer.alloc(32, 1))
    chmodSync(path, 0o644)
    const rt = createTestRuntime()
    expect(readRevokeTargetKey(dir, rt.log).equals(Buffer.alloc(32, 1))).toBe(true)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(rt.logs).toContainEqual(expect.objectContaining({ level: 'warn', mode: '644', path }))
  })

  it('reads the key of another process that made it first, and leaves no temp file', () => {
    const { dir, path } = dataDir()
    other.key = Buffer.alloc(32, 9)
    const rt = createTestRuntime()
    expect(readRevokeTargetKey(dir, rt.log).equals(Buffer.alloc(32, 9))).toBe(true)
    expect(readdirSync(dir)).toEqual(['revoke-target-key'])
    expect(readFileSync(path).equals(Buffer.alloc(32, 9))).toBe(true)
    expect(rt.logs).toEqual([])
  })

  it('removes the temp files a crash left before their link, and nothing else: no symlink, no fresh one', () => {
    const { dir } = dataDir()
    leaveStaleTemps(dir)
    // A symlink named like a temp file (the agent's, or an operator's): neither it nor its target goes.
    const elsewhere = join(dir, 'kept')
    mkdirSync(elsewhere)
    writeFileSync(join(elsewhere, 'target'), 'precious')
    symlinkSync(join(elsewhere, 'target'), join(dir, 'revoke-target-key.7.aabbccddeeff.tmp'))
    // Another process's, written a moment ago and not linked yet, by a pid this one cannot see (another pid
    // namespace: a container on the same volume), which looks ended from here; and files of other names.
    const fresh = `revoke-target-key.${endedPid()}.abcdefabcdef.tmp`
    writeFileSync(join(dir, fresh), Buffer.alloc(32, 4))
    for (const name of ['revoke-target-key.tmp', 'store.sqlite', 'revoke-target-key.9.tmp.bak']) {
      writeFileSync(join(dir, name), 'x')
      utimesSync(join(dir, name), hourAgo(), hourAgo())
    }

    const rt = createTestRuntime()
    expect(readRevokeTargetKey(dir, rt.log).length).toBe(32)
    expect(readdirSync(dir).sort()).toEqual(
      [
        'kept',
        'revoke-target-key',
        'revoke-target-key.7.aabbccddeeff.tmp',
        fresh,
        'revoke-target-key.9.tmp.bak',
        'revoke-target-key.tmp',
        'store.sqlite',
      ].sort(),
    )
    expect(readFileSync(join(elsewhere, 'target'), 'utf8')).toBe('precious')
    expect(rt.logs.filter((l) => l.msg.startsWith('Removed'))).toEqual([
      expect.objectContaining({ level: 'info', removed: 2, dir }),
    ])
  })

  it("leaves the temp of a process still running, however old: a second process's fsync may stall past a minute", () => {
    const { dir } = dataDir()
    // Another nerve on the same data dir (here: this test's parent process) writing its key, its fsync stalled
    // for an hour; and one that this process's pid wrote before, which can only be an earlier process given
    // the same pid (a container restarted): this one unlinks its own before it returns.
    const running = leaveTemp(dir, process.ppid, '0123456789ab')
    leaveTemp(dir, process.pid, 'ba9876543210')
    const rt = createTestRuntime()
    expect(readRevokeTargetKey(dir, rt.log).length).toBe(32)
    expect(readdirSync(dir).sort()).toEqual(['revoke-target-key', running])
    expect(rt.logs.filter((l) => l.msg.startsWith('Removed'))).toEqual([
      expect.objectContaining({ removed: 1, dir }),
    ])
  })

  it('starts when a stale temp file cannot be removed: warns with its code, counts only what it removed', () => {
    const { dir } = dataDir()
    const stale = leaveStaleTemps(dir)
    other.undeletable.add(join(dir, stale[0] as string))

    const rt = createTestRuntime()
    expect(readRevokeTargetKey(dir, rt.log).length).toBe(32)
    expect(readdirSync(dir).sort()).toEqual(['revoke-target-key', stale[0]])
    expect(rt.logs.filter((l) => l.msg.includes('temp file'))).toEqual([
      expect.objectContaining({ level: 'warn', path: join(dir, stale[0] as string), code: 'EPERM' }),
      expect.objectContaining({ level: 'info', removed: 1, dir }),
    ])
  })

  it('starts when the data dir cannot be listed for stale temp files, with a warning', () => {
    const { dir } = dataDir()
    other.unlistable.add(dir)
    const rt = createTestRuntime()
    expect(readRevokeTargetKey(dir, rt.log).length).toBe(32)
    expect(rt.logs.filter((l) => l.msg.includes('temp file'))).toEqual([
      expect.objectContaining({ level: 'warn', dir, code: 'EACCES' }),
    ])
  })
})
