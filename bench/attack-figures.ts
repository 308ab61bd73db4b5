// Figures for docs/threat-model.md: what an attacker on nerve's port can do to a `nerve run` on loopback.
//   node --import tsx bench/attack-figures.ts unauth-bodies|unrouted-bodies|slow-headers|connection-hog|alert-flood [--root DIR]
// --root runs another checkout's bin/nerve.mjs (to measure before and after a change). Loopback only.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { tempDir } from '../tests/helpers/random-names.ts'
import { type NerveChild, sleep, startNerveChild } from './nerve-child.ts'

const token = 'nrv_attack-figures-token-01234567'
const { values, positionals } = parseArgs({ allowPositionals: true, options: { root: { type: 'string' } } })
const root = values.root ?? join(import.meta.dirname, '..')

/** Resident set size and its peak (VmHWM) of a process, MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
}

/** Size of every file under a directory, bytes (du -sb). */
function diskUsage(dir: string): Promise<number> {
  const out = spawn('du', ['-sb', dir])
  return new Promise<number>((resolve) => {
    let text = ''
    out.stdout.on('data', (d) => {
      text += d
    })
    out.on('close', () => resolve(Number(text.split('\t')[0])))
  })
}

/** `nerve run` of `root` with one registered agent that both samples name: the alert's host and the caller. */
function startNerve(): Promise<NerveChild> {
  const agents = [
    {
      id: 'flooder',
      match: { hosts: ['x86'], aws: ['arn:aws:iam::609418236337:user/christophe'] },
    },
  ]
  return startNerveChild(tempDir('nerve-attack'), { log: { level: 'warn' }, agents }, token, {}, root)
}

/** 40 connections without a token, each announcing and streaming a 10 MiB body (to `path`). */
async function unauthBodies(port: number, pid: number, path = '/v1/falco') {
  await sleep(2_000)
  const before = memory(pid)
  const chunk = Buffer.alloc(64 * 1024, 0x20)
  const size = 10 * 1024 * 1024
  const statuses: string[] = []
  await Promise.all(
    Array.from(
      { length: 40 },
      () =>
        new Promise<void>((resolve) => {
          const socket = connect(port, '127.0.0.1')
          let answer = ''
          socket.on('data', (d) => {
            answer += d
          })
          socket.on('error', () => {})
          socket.on('close', () => {
            statuses.push(answer.split('\r\n')[0] || '(closed)')
            resolve()
          })
          socket.on('connect', async () => {
            socket.write(
              `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
            )
            for (let sent = 0; sent < size && !socket.destroyed; sent += chunk.length) {
              if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r))
            }
            setTimeout(() => socket.destroy(), 5_000)
          })
        }),
    ),
  )
  const after = memory(pid)
  const tally = new Map<string, number>()
  for (const s of statuses) tally.set(s, (tally.get(s) ?? 0) + 1)
  const counts = [...tally].map(([s, n]) => `${n}× ${s}`)
  return {
    rss_before_mib: before.rss.toFixed(0),
    peak_rss_during_mib: after.peak.toFixed(0),
    rss_growth_mib: (after.peak - before.rss).toFixed(0),
    answers: counts.join(', '),
  }
}

/** One client sending its headers one byte a second: how long is it held? */
function slowHeaders(port: number) {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    const head = `POST /v1/falco HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(10_000)}`
    let at = 0
    let answer = ''
    const timer = setInterval(() => {
      if (!socket.destroyed) socket.write(head[at++] as string)
    }, 1_000)
    const giveUp = setTimeout(() => socket.destroy(), 300_000)
    socket.on('data', (d) => {
      answer += d
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(timer)
      clearTimeout(giveUp)
      resolve({
        held_s: ((Date.now() - started) / 1000).toFixed(1),
        answer: answer.split('\r\n')[0] || '(closed)',
      })
    })
  })
}

/**
 * The watched agent (127.0.0.1) holds 1,100 connections, more than the default http.max_connections,
 * opening each again as soon as it is closed; meanwhile a Falco sender on another address (127.0.0.2)
 * posts 20 alerts, each on a connection of its own as a new Falcosidekick connection would.
 */
async function connectionHog(port: number) {
  let stopped = false
  let held = 0
  const sockets = new Set<Socket>()
  const open = () => {
    if (stopped) return
    const socket = connect(port, '127.0.0.1')
    sockets.add(socket)
    socket.on('connect', () => held++)
    socket.on('error', () => {})
    socket.on('close', () => {
      sockets.delete(socket)
      setTimeout(open, 10)
    })
  }
  for (let i = 0; i < 1_100; i++) open()
  await sleep(3_000)
  const heldAtStart = sockets.size
  const alert = fixtureLine('falco/falcosecurity-plugins.ndjson', () => true)
  const body = JSON.stringify({ ...alert, time: new Date().toISOString() })
  const answers: string[] = []
  for (let i = 0; i < 20; i++) answers.push(await postFrom('127.0.0.2', port, body))
  stopped = true
  for (const socket of sockets) socket.destroy()
  const tally = new Map<string, number>()
  for (const a of answers) tally.set(a, (tally.get(a) ?? 0) + 1)
  return {
    hog_sockets: heldAtStart,
    hog_connects: held,
    sender_answers: [...tally].map(([a, n]) => `${n}× ${a}`).join(', '),
  }
}

/** One POST /v1/falco on a fresh connection from `from`: the status line, or how the connection ended. */
function postFrom(from: string, port: number, body: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from })
    let answer = ''
    let failed = ''
    socket.on('data', (d) => {
      answer += d
      if (answer.includes('\r\n\r\n')) socket.end()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failed = err.code ?? 'error'
    })
    socket.on('close', () => resolve(answer.split('\r\n')[0] || `(closed${failed ? `: ${failed}` : ''})`))
    socket.on('connect', () =>
      socket.write(
        `POST /v1/falco HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      ),
    )
    setTimeout(() => socket.destroy(), 10_000)
  })
}

const fixtureLine = (path: string, pick: (r: Record<string, unknown>) => boolean) =>
  readFileSync(join(import.meta.dirname, '../tests/fixtures', path), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find(pick) as Record<string, unknown>

/**
 * 200 "Read sensitive file untrusted" alerts (a `cat /etc/shadow` loop; falcosecurity/plugins sample) then
 * 200 denied iam:CreateAccessKey calls (Stratus Red Team record shape) of one agent: N × M pairs.
 */
async function alertFlood(port: number, dataDir: string) {
  const post = (path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then((r) => r.status)
  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
  }
  const correlations = () => metric('nerve_correlate_correlations_total')
  await sleep(2_000)
  const before = await diskUsage(dataDir)
  const alert = fixtureLine(
    'falco/falcosecurity-plugins.ndjson',
    (r) => r.rule === 'Read sensitive file untrusted',
  )
  const call = fixtureLine('cloudtrail/stratus-red-team-detonation-logs.ndjson', (r) =>
    String(r.eventID).startsWith('39480357'),
  )
  const t0 = Date.now() - 600_000
  const alerts = Array.from({ length: 200 }, (_, i) => ({
    ...alert,
    time: new Date(t0 + i * 100).toISOString(),
  }))
  const calls = Array.from({ length: 200 }, (_, i) => ({
    ...call,
    eventID: `f1d0c0de-0000-4000-8000-${String(i).padStart(12, '0')}`,
    eventName: 'CreateAccessKey',
    errorCode: 'AccessDenied',
    errorMessage: 'User is not authorized to perform: iam:CreateAccessKey',
    eventTime: new Date(t0 + 60_000 + i * 100).toISOString().replace(/\.\d+Z$/, 'Z'),
  }))
  const statuses = [await post('/v1/falco', alerts), await post('/v1/cloudtrail', { Records: calls })]
  let total = -1
  for (let stable = 0; stable < 10; ) {
    await sleep(1_000)
    const now = await correlations()
    stable = now === total ? stable + 1 : 0
    total = now
  }
  const after = await diskUsage(dataDir)
  return {
    posted: statuses.join(','),
    correlations_emitted: total,
    correlations_suppressed: await metric('nerve_correlate_suppressed_correlations_total'),
    data_dir_before_kib: Math.round(before / 1024),
    data_dir_after_kib: Math.round(after / 1024),
    data_dir_growth_mib: ((after - before) / 1048576).toFixed(1),
  }
}

const attack = positionals[0]
const nerve = await startNerve()
const { child, dataDir } = nerve
const port = Number(new URL(nerve.base).port)
try {
  const pid = child.pid as number
  let result: unknown
  if (attack === 'unauth-bodies') result = await unauthBodies(port, pid)
  // The same bodies sent to a path no route has (fastify's not-found handler).
  else if (attack === 'unrouted-bodies') result = await unauthBodies(port, pid, '/v1/nothing-here')
  else if (attack === 'slow-headers') result = await slowHeaders(port)
  else if (attack === 'connection-hog') result = await connectionHog(port)
  else if (attack === 'alert-flood') result = await alertFlood(port, dataDir)
  else throw new Error(`unknown attack ${attack}`)
  process.stdout.write(`${JSON.stringify({ attack, root, ...(result as object) })}\n`)
} finally {
  child.kill('SIGKILL')
}
