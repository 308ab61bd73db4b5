import { describe, expect, it } from 'vitest'
import {
  classifyAttempt,
  firstBackoffMs,
  nextStep,
  parseRetryAfter,
  retryDelayMs,
} from '../../../sinks/revoke-retry.ts'

const now = Date.UTC(2026, 10, 25, 17, 0, 0)

describe('classifyAttempt', () => {
  it('counts only 2xx as sent', () => {
    for (const status of [200, 201, 202, 204]) expect(classifyAttempt({ status }, now).kind).toBe('sent')
  })

  it('treats 410 as gone, other 4xx and 3xx as final rejections', () => {
    expect(classifyAttempt({ status: 410 }, now)).toEqual({ kind: 'gone' })
    for (const status of [400, 401, 403, 404, 422]) {
      expect(classifyAttempt({ status }, now)).toEqual({ kind: 'rejected', reason: 'rejected' })
    }
    expect(classifyAttempt({ status: 302 }, now)).toEqual({
      kind: 'rejected',
      reason: 'redirect_not_followed',
    })
  })

  it('retries 429, 5xx, timeouts and network errors, carrying Retry-After', () => {
    expect(classifyAttempt({ status: 429, retryAfter: '7' }, now)).toEqual({
      kind: 'retry',
      reason: 'throttled',
      retryAfterMs: 7000,
    })
    expect(classifyAttempt({ status: 503 }, now)).toEqual({ kind: 'retry', reason: 'server_error' })
    expect(classifyAttempt({ error: 'timeout' }, now)).toEqual({ kind: 'retry', reason: 'timeout' })
    expect(classifyAttempt({ error: 'network_error' }, now)).toEqual({
      kind: 'retry',
      reason: 'network_error',
    })
  })
})

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000)
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000)
    expect(parseRetryAfter(new Date(now - 30_000).toUTCString(), now)).toBe(0)
  })

  it('ignores what is neither', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
    expect(parseRetryAfter('soon', now)).toBeUndefined()
  })
})

describe('retryDelayMs', () => {
  const maxBackoffMs = 60_000

  it('doubles from the first backoff, with jitter between half and the full delay', () => {
    expect(retryDelayMs(1, { maxBackoffMs, random: () => 0 })).toBe(firstBackoffMs / 2)
    expect(retryDelayMs(1, { maxBackoffMs, random: () => 1 })).toBe(firstBackoffMs)
    expect(retryDelayMs(4, { maxBackoffMs, random: () => 1 })).toBe(8 * firstBackoffMs)
  })

  it('is capped at max_backoff', () => {
    expect(retryDelayMs(30, { maxBackoffMs, random: () => 1 })).toBe(maxBackoffMs)
    expect(retryDelayMs(30, { maxBackoffMs, random: () => 0 })).toBe(maxBackoffMs / 2)
  })

  it('never retries before Retry-After, which is honoured up to max_backoff', () => {
    expect(retryDelayMs(1, { maxBackoffMs, random: () => 0, retryAfterMs: 20_000 })).toBe(20_000)
    expect(retryDelayMs(1, { maxBackoffMs, random: () => 0, retryAfterMs: 3_600_000 })).toBe(maxBackoffMs)
  })
})

describe('nextStep', () => {
  const opts = { now, maxAttempts: 3, maxBackoffMs: 60_000, random: () => 1 }

  it('maps each answer to what happens to the delivery', () => {
    expect(nextStep({ status: 204 }, 1, opts)).toEqual({ state: 'sent', reason: 'delivered' })
    expect(nextStep({ status: 410 }, 1, opts)).toEqual({
      state: 'failed',
      reason: 'target_gone',
      disableTarget: true,
    })
    expect(nextStep({ status: 401 }, 1, opts)).toEqual({
      state: 'failed',
      reason: 'rejected',
      disableTarget: false,
    })
    expect(nextStep({ status: 503, retryAfter: '30' }, 1, opts)).toEqual({
      state: 'pending',
      reason: 'server_error',
      retryInMs: 30_000,
    })
    expect(nextStep({ error: 'timeout' }, 2, opts)).toEqual({
      state: 'pending',
      reason: 'timeout',
      retryInMs: 2 * firstBackoffMs,
    })
  })

  it('gives up at max_attempts, keeping the last reason', () => {
    expect(nextStep({ status: 502 }, 3, opts)).toEqual({
      state: 'failed',
      reason: 'max_attempts',
      detail: 'server_error',
      disableTarget: false,
    })
  })
})
