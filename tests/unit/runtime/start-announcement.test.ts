// What `nerve run` says on stderr once it listens. With http.host 0.0.0.0 it said "listening on
// http://127.0.0.1:8080" (the address the server names first), as if only this machine could reach it:
// it now says what it listens on, every interface, and keeps the local address for the routes to try.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { loadConfig } from '../../../runtime/load-config.ts'
import { announceStart } from '../../../runtime/start-announcement.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

afterEach(() => {
  vi.restoreAllMocks()
})

/** The stderr lines and the log line of a start on `host`, which the server reports as `address`. */
function announced(host: string, address: string) {
  const rt = createTestRuntime({ level: 'info' })
  const base = loadConfig({ env: { NERVE_DATA_DIR: '/var/lib/nerve' } })
  const written: string[] = []
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    written.push(String(chunk))
    return true
  })
  announceStart(
    { ...base, http: { ...base.http, host } },
    {
      address,
      stages: ['ingest', 'correlate', 'sinks'],
      bus: 'embedded',
      token: { token: 'x', source: 'config' },
    },
    rt.log,
  )
  vi.restoreAllMocks()
  return {
    lines: written.join('').trim().split('\n'),
    log: rt.logs.find((l) => l.msg === 'nerve is running.'),
  }
}

describe('the start announcement', () => {
  it('says every interface when http.host is 0.0.0.0 or ::, not the loopback address', () => {
    for (const [host, shown] of [
      ['0.0.0.0', 'http://0.0.0.0:8080'],
      ['::', 'http://[::]:8080'],
    ]) {
      const { lines, log } = announced(host as string, 'http://127.0.0.1:8080')
      expect(lines[0]).toBe(
        `nerve ingest + correlate + sinks listening on ${shown}, every interface (bus: embedded, data: /var/lib/nerve)`,
      )
      expect(log?.address).toBe(shown)
      expect(lines).toContain(
        '  POST http://127.0.0.1:8080/v1/falco  /v1/cloudtrail  /v1/cloudtrail/firehose',
      )
    }
  })

  it('names the address itself for a host that is one', () => {
    const { lines } = announced('127.0.0.1', 'http://127.0.0.1:8080')
    expect(lines[0]).toBe(
      'nerve ingest + correlate + sinks listening on http://127.0.0.1:8080 (bus: embedded, data: /var/lib/nerve)',
    )
  })
})
