// `nerve replay s3://bucket/prefix` reads a trail where it is, through the real AWS SDK against the
// loopback S3 stand-in (ListObjectsV2 + GetObject): the same bytes as a replay of the same files on disk,
// --since/--until picking files by the time in their key, and digests left out.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AwsStandIn, startAwsStandIn } from '../helpers/aws-stand-in.ts'
import { shuffled, writeHourlyTrail } from '../helpers/hourly-trail-files.ts'
import { tempDir } from '../helpers/random-names.ts'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')
const config = join(root, 'tests/fixtures/replay/nerve.yaml')
const prefix = 'AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-west-2/'

let standIn: AwsStandIn
let files: string[]

async function replay(args: string[]) {
  const { stdout, stderr } = await run(
    process.execPath,
    [join(root, 'bin/nerve.mjs'), 'replay', '--config', config, ...args],
    {
      maxBuffer: 64 << 20,
      env: {
        PATH: process.env.PATH,
        AWS_ENDPOINT_URL_S3: standIn.url,
        AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        AWS_REGION: 'us-west-2',
      },
    },
  )
  return { stdout, stderr, summary: JSON.parse(stderr.trim().split('\n').at(-1) as string) }
}

const awsEnv = () => ({
  AWS_ENDPOINT_URL_S3: standIn.url,
  AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  AWS_REGION: 'us-west-2',
})

/** A replay expected to fail: its exit code and stderr. */
async function failedReplay(args: string[], env: Record<string, string> = awsEnv()) {
  return run(process.execPath, [join(root, 'bin/nerve.mjs'), 'replay', '--config', config, ...args], {
    env: { PATH: process.env.PATH, ...env },
  }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  )
}

/** A replay that may exit non-zero (3: files rejected): its exit code, stdout and stderr. */
async function exitedReplay(args: string[]) {
  return run(process.execPath, [join(root, 'bin/nerve.mjs'), 'replay', '--config', config, ...args], {
    maxBuffer: 64 << 20,
    env: { PATH: process.env.PATH, ...awsEnv() },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  )
}

beforeAll(async () => {
  standIn = await startAwsStandIn()
  // 72 hours from 2026-11-01: three days of the org trail's region folder, and the Falco alerts beside it.
  files = writeHourlyTrail(tempDir(), { hours: 72, recordsPerFile: 40, ties: true })
  for (const file of shuffled(files, 9)) {
    const name = basename(file)
    const stamp = /_(\d{4})(\d{2})(\d{2})T/.exec(name)
    const key = stamp ? `${prefix}${stamp[1]}/${stamp[2]}/${stamp[3]}/${name}` : `falco/${name}`
    standIn.putObject('org-trail', key, readFileSync(file))
  }
  standIn.putObject(
    'org-trail',
    'AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail-Digest/us-west-2/2026/11/01/123456789012_CloudTrail-Digest_us-west-2_org_us-west-2_20261101T010000Z.json.gz',
    '{"digestStartTime":"2026-11-01T00:00:00Z"}',
  )
})

afterAll(async () => {
  await standIn?.close()
})

describe('nerve replay s3://', { timeout: 120_000 }, () => {
  it('gives the bytes of the same files replayed from disk, digests left out', async () => {
    const remote = await replay([`s3://org-trail/${prefix}`, 's3://org-trail/falco/', '--threads', '2'])
    const local = await replay(files)
    expect(remote.stdout).toBe(local.stdout)
    expect(remote.summary).toMatchObject({ read: local.summary.read, invalid: 0, correlations: 72 * 10 })
    const actions = new Set(standIn.requests.map((r) => r.action))
    expect(actions).toEqual(new Set(['ListObjectsV2', 'GetObject']))
    expect(standIn.requests.some((r) => r.path.includes('CloudTrail-Digest'))).toBe(false)
    // --order input reads the same objects.
    const arrival = await replay(['--order', 'input', `s3://org-trail/${prefix}`])
    expect(arrival.summary.read).toBe(72 * (40 + 2))
  })

  it('reads only the files whose key time is within --since/--until, starting the listing at --since', async () => {
    standIn.requests.length = 0
    const window = ['--since', '2026-11-02', '--until', '2026-11-02T12:00Z']
    const remote = await replay([...window, `s3://org-trail/${prefix}`, 's3://org-trail/falco/'])
    const local = await replay([...window, ...files])
    expect(remote.stdout).toBe(local.stdout)
    const gets = standIn.requests.filter((r) => r.action === 'GetObject')
    // 12 hourly trail files, and every Falco file (their names carry no CloudTrail time).
    expect(gets.filter((r) => r.path.includes('CloudTrail'))).toHaveLength(12)
    expect(gets.filter((r) => r.path.includes('/falco/'))).toHaveLength(72)
    const list = standIn.requests.find((r) => r.action === 'ListObjectsV2' && r.path.includes('CloudTrail'))
    expect(decodeURIComponent(list?.path ?? '')).toContain(`start-after=${prefix}2026/11/01`)
  })

  it('rejects a truncated gzipped object alone, as a local file, and --strict stops at it', async () => {
    const key = 'broken/123456789012_CloudTrail_us-west-2_20261101T0000Z_cut.json.gz'
    const trails = files.filter((f) => f.endsWith('.json.gz'))
    const good = trails[1] as string
    standIn.putObject('org-trail', key, readFileSync(trails[0] as string).subarray(0, 200))
    standIn.putObject('org-trail', `broken/${basename(good)}`, readFileSync(good))
    const local = await replay([good])
    for (const threads of ['0', '2']) {
      const rejected = await replay(['--threads', threads, 's3://org-trail/broken/']).then(
        () => ({ code: 0, stdout: '', stderr: '' }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      )
      expect(rejected.code).toBe(3)
      expect(rejected.stdout).toBe(local.stdout)
      expect(rejected.stderr).toContain(
        `nerve replay: s3://org-trail/${key}: the gzip data ends early (the file is truncated). The file is rejected: none of its records is used.\n`,
      )
      expect(JSON.parse(rejected.stderr.trim().split('\n').at(-1) as string)).toMatchObject({
        read: local.summary.read,
        files_rejected: 1,
      })
      const failed = await replay(['--strict', '--threads', threads, 's3://org-trail/broken/']).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      )
      expect(failed.code).toBe(1)
      expect(failed.stderr.trim().split('\n').at(-1)).toBe(
        `nerve replay: s3://org-trail/${key}: the gzip data ends early (the file is truncated).`,
      )
      expect(failed.stderr).not.toMatch(/^\s+at /m)
    }
  })

  it("prints nothing but nerve's own lines: no AWS SDK warning about Node.js versions", async () => {
    for (const threads of ['0', '2']) {
      const { stderr } = await replay([
        '--threads',
        threads,
        '--since',
        '2026-11-01T05:00Z',
        '--until',
        '2026-11-01T06:00Z',
        `s3://org-trail/${prefix}`,
      ])
      expect(stderr).not.toContain('NodeVersionSupportWarning')
      expect(stderr.trim().split('\n')).toHaveLength(1)
    }
  })

  describe('S3 failing: one line naming the bucket (and the key), the AWS error code and HTTP status, exit 1', () => {
    const trailPrefix = `s3://org-trail/${prefix}`
    it('a bucket that does not exist', async () => {
      expect(await failedReplay(['s3://no-such-bucket/AWSLogs/'])).toEqual({
        code: 1,
        stderr:
          'nerve replay: s3://no-such-bucket/AWSLogs/: the bucket does not exist (ListObjectsV2: NoSuchBucket, HTTP 404).\n',
      })
    })

    it('a listing refused (403)', async () => {
      standIn.failNext('ListObjectsV2', { status: 403, code: 'AccessDenied', message: 'Access Denied' })
      expect(await failedReplay([trailPrefix])).toEqual({
        code: 1,
        stderr: `nerve replay: ${trailPrefix}: S3 refused ListObjectsV2 (AccessDenied, HTTP 403: Access Denied); the credentials need s3:ListBucket on the bucket.\n`,
      })
    })

    it('three 500s in a row, after the SDK retried', async () => {
      standIn.failNext('ListObjectsV2', { status: 500, code: 'InternalError', message: 'internal' }, 3)
      expect(await failedReplay([trailPrefix])).toEqual({
        code: 1,
        stderr: `nerve replay: ${trailPrefix}: ListObjectsV2 failed 3 times (InternalError, HTTP 500: internal).\n`,
      })
    })

    it('an endpoint that refuses connections', async () => {
      expect(
        await failedReplay([trailPrefix], { ...awsEnv(), AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }),
      ).toEqual({
        code: 1,
        stderr: `nerve replay: ${trailPrefix}: S3 could not be reached for ListObjectsV2 (3 attempts: connect ECONNREFUSED 127.0.0.1:9).\n`,
      })
    })

    it('no credentials anywhere in the chain', async () => {
      const home = tempDir()
      const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...noKeys } = awsEnv()
      const env = {
        ...noKeys,
        HOME: home,
        AWS_CONFIG_FILE: join(home, 'config'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
        // No instance metadata either: the test talks to loopback only.
        AWS_EC2_METADATA_DISABLED: 'true',
      }
      expect(await failedReplay([trailPrefix], env)).toEqual({
        code: 1,
        stderr: `nerve replay: ${trailPrefix}: no AWS credentials were found for ListObjectsV2 (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role).\n`,
      })
    })
  })

  describe('an object S3 refuses or no longer has: rejected alone, the others replayed, exit 3', () => {
    // The watched agent, if its role may write into the trail's bucket, plants an object under the
    // prefix encrypted with a KMS key nerve may not use: S3 answers 403 for that object alone.
    const planted = 'refused/123456789012_CloudTrail_us-west-2_20261101T0000Z_planted.json.gz'
    const good = 'refused/123456789012_CloudTrail_us-east-1_20261101T0500Z_good.json.gz'
    const refusal = `nerve replay: s3://org-trail/${planted}: S3 refused GetObject (AccessDenied, HTTP 403: Access Denied); the credentials need s3:GetObject on the object, and kms:Decrypt on its key when the trail is SSE-KMS encrypted.`

    it("a 403 on one object: its line, the other files' correlations (the same as without it), with and without decoding threads", async () => {
      const trail = readFileSync(files.find((f) => f.endsWith('.json.gz')) as string)
      standIn.putObject('org-trail', good, trail)
      const alone = await replay(['s3://org-trail/refused/'])
      standIn.putObject('org-trail', planted, trail)
      for (const threads of ['0', '2']) {
        standIn.failNext(
          'GetObject',
          { status: 403, code: 'AccessDenied', message: 'Access Denied' },
          1,
          planted,
        )
        const run = await exitedReplay(['--threads', threads, 's3://org-trail/refused/'])
        expect(run.code).toBe(3)
        expect(run.stderr).toContain(`${refusal} The file is rejected: none of its records is used.\n`)
        expect(run.stdout).toBe(alone.stdout)
        expect(JSON.parse(run.stderr.trim().split('\n').at(-1) as string)).toMatchObject({
          files_rejected: 1,
        })
      }
    })

    it('--strict stops at it, with its line and exit 1', async () => {
      standIn.failNext(
        'GetObject',
        { status: 403, code: 'AccessDenied', message: 'Access Denied' },
        1,
        planted,
      )
      const run = await failedReplay(['--strict', 's3://org-trail/refused/'])
      expect(run).toEqual({ code: 1, stderr: `${refusal}\n` })
    })
  })

  it('names a prefix that holds nothing, and a bad time', async () => {
    await expect(replay(['s3://org-trail/AWSLogs/nothing/'])).rejects.toMatchObject({
      stderr: expect.stringContaining('holds no file to read'),
    })
    await expect(replay(['--since', 'yesterday', 's3://org-trail/falco/'])).rejects.toMatchObject({
      stderr: expect.stringContaining('--since takes an ISO 8601 date'),
    })
  })
})
