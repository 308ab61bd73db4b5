import * as crypto from 'node:crypto'
import type { Socket } from 'node:net'
import { describe, expect, it, vi } from 'vitest'
import { createHttpAuth } from '../../../runtime/http-auth.ts'

// The constant-time comparison, watched: which buffers it is given says what a caller's timing can learn.
vi.mock('node:crypto', async (original) => {
  const actual = await original<typeof crypto>()
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) }
})

const socket = {} as Socket
const falcoRoute = { auth: 'ingest', source: 'falco' } as const

describe('http auth', () => {
  it('opens a route with its token as a bearer, ?token= or the Firehose header, and nothing else', () => {
    const auth = createHttpAuth({ host: '0.0.0.0' }, { ingestToken: 'nrv_shared-token-0123456789' })
    const tokens = auth.tokensFor(falcoRoute) ?? []
    const opens = (headers: Record<string, string>, query: Record<string, string> = {}) =>
      auth.authorized(headers, query, socket, tokens, true)
    expect(opens({ authorization: 'Bearer nrv_shared-token-0123456789' })).toBe(true)
    expect(opens({}, { token: 'nrv_shared-token-0123456789' })).toBe(true)
    expect(opens({ 'x-amz-firehose-access-key': 'nrv_shared-token-0123456789' })).toBe(true)
    expect(opens({ authorization: 'Bearer nrv_shared-token-012345678' })).toBe(false)
    expect(opens({})).toBe(false)
  })

  // A token of no characters would be matched by `?token=` or `Authorization: Bearer ` (an empty stored
  // ingest-token file, left by a crash between its creation and its write, made one).
  it('never opens with an empty token, whatever the configured one', () => {
    const auth = createHttpAuth({ host: '0.0.0.0' }, { ingestToken: '' })
    for (const route of [falcoRoute, { auth: 'read' } as const]) {
      const tokens = auth.tokensFor(route) ?? []
      expect(auth.authorized({}, { token: '' }, socket, tokens, false)).toBe(false)
      expect(auth.authorized({ authorization: 'Bearer ' }, {}, socket, tokens, false)).toBe(false)
      expect(auth.authorized({ 'x-amz-firehose-access-key': '' }, {}, socket, tokens, false)).toBe(false)
    }
  })

  // Compared only when of the token's length, a guess of the wrong length returned at once: the time told
  // the caller the token's length before it had to guess a character.
  it("compares every token the same way whatever the candidate's length, so timing cannot tell its length", () => {
    const auth = createHttpAuth({ host: '0.0.0.0' }, { ingestToken: 'nrv_shared-token-0123456789' })
    const tokens = auth.tokensFor(falcoRoute) ?? []
    const compare = vi.mocked(crypto.timingSafeEqual)
    const lengthsCompared = (candidate: string) => {
      compare.mockClear()
      auth.authorized({ authorization: `Bearer ${candidate}` }, {}, socket, tokens, false)
      return compare.mock.calls.map(([a, b]) => [a.byteLength, b.byteLength])
    }
    const short = lengthsCompared('x')
    expect(short).toEqual([[32, 32]])
    expect(lengthsCompared('nrv_shared-token-012345678X')).toEqual(short)
    expect(lengthsCompared('y'.repeat(4096))).toEqual(short)
  })
})
