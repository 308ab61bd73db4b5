// When to try a webhook delivery again: a classification of the answer (2xx done, 410 gone, other 4xx
// stop, 429/5xx/network retry) and a capped, jittered exponential backoff that honours Retry-After.
// Pure: the clock and the random source are arguments.

export type AttemptResult = { status: number; retryAfter?: string } | { error: 'timeout' | 'network_error' }

export type AttemptVerdict =
  | { kind: 'sent' }
  | { kind: 'gone' }
  | { kind: 'rejected'; reason: string }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }

/** The first retry waits about this long; each later one twice as long, up to max_backoff. */
export const firstBackoffMs = 1000

export function classifyAttempt(result: AttemptResult, now: number): AttemptVerdict {
  if ('error' in result) return { kind: 'retry', reason: result.error }
  const { status } = result
  if (status >= 200 && status < 300) return { kind: 'sent' }
  if (status === 410) return { kind: 'gone' }
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(result.retryAfter, now)
    const reason = status === 429 ? 'throttled' : 'server_error'
    return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs }
  }
  // 3xx is a failure (redirects are never followed, as Standard Webhooks and CloudEvents require).
  return { kind: 'rejected', reason: status >= 400 ? 'rejected' : 'redirect_not_followed' }
}

/** `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/**
 * Delay before attempt `failures + 1`: exponential from firstBackoffMs, capped at maxBackoffMs, with
 * "equal jitter" (half fixed, half random) so failed targets are not hit in lockstep; never shorter
 * than the receiver's Retry-After, which is honoured up to maxBackoffMs.
 */
export function retryDelayMs(
  failures: number,
  opts: { maxBackoffMs: number; retryAfterMs?: number; random: () => number },
): number {
  const exponential = Math.min(opts.maxBackoffMs, firstBackoffMs * 2 ** Math.max(0, failures - 1))
  const jittered = Math.round(exponential / 2 + (opts.random() * exponential) / 2)
  const asked = Math.min(opts.retryAfterMs ?? 0, opts.maxBackoffMs)
  return Math.max(jittered, asked)
}

export type NextStep =
  | { state: 'sent'; reason: 'delivered' }
  | { state: 'failed'; reason: string; detail?: string; disableTarget: boolean }
  | { state: 'pending'; reason: string; retryInMs: number }

/** What an attempt's result means for its delivery: done, given up (and why), or retried after a delay. */
export function nextStep(
  result: AttemptResult,
  attempts: number,
  opts: { now: number; maxAttempts: number; maxBackoffMs: number; random: () => number },
): NextStep {
  const verdict = classifyAttempt(result, opts.now)
  switch (verdict.kind) {
    case 'sent':
      return { state: 'sent', reason: 'delivered' }
    case 'gone':
      return { state: 'failed', reason: 'target_gone', disableTarget: true }
    case 'rejected':
      return { state: 'failed', reason: verdict.reason, disableTarget: false }
    case 'retry': {
      if (attempts >= opts.maxAttempts) {
        return { state: 'failed', reason: 'max_attempts', detail: verdict.reason, disableTarget: false }
      }
      const retryInMs = retryDelayMs(attempts, {
        maxBackoffMs: opts.maxBackoffMs,
        random: opts.random,
        ...(verdict.retryAfterMs === undefined ? {} : { retryAfterMs: verdict.retryAfterMs }),
      })
      return { state: 'pending', reason: verdict.reason, retryInMs }
    }
  }
}
