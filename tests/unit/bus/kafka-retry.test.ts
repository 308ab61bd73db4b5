import { createRequire } from 'node:module'
import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSSASLAuthenticationError,
} from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { retryPolicy } from '../../../bus/kafka-config.ts'
import { backoffDelay, busError, isRetriableKafkaError } from '../../../bus/kafka-retry.ts'
import { NerveError } from '../../../runtime/errors.ts'

// kafkajs's own code → error table (not in its typings): the errors the broker really answers with.
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): Error
}

describe('isRetriableKafkaError', () => {
  it('keeps kafkajs’s own decision', () => {
    expect(isRetriableKafkaError(new KafkaJSConnectionError('Connection refused'))).toBe(true)
    const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error
    expect(isRetriableKafkaError(new SaslError('bad password'))).toBe(false)
    expect(isRetriableKafkaError(new KafkaJSNonRetriableError('nope'))).toBe(false)
  })

  it('reads protocol errors’ flag from kafkajs’s table: leader moving is retriable, a record too large is not', () => {
    expect(isRetriableKafkaError(createErrorFromCode(6))).toBe(true) // NOT_LEADER_OR_FOLLOWER
    expect(isRetriableKafkaError(createErrorFromCode(10))).toBe(false) // MESSAGE_TOO_LARGE
  })

  it('judges an exhausted retry budget by the error that kept failing', () => {
    const exhausted = (cause: Error) =>
      new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 8, retryTime: 10 })
    expect(isRetriableKafkaError(exhausted(new KafkaJSConnectionError('down')))).toBe(true)
    expect(isRetriableKafkaError(exhausted(new KafkaJSNonRetriableError('bad')))).toBe(false)
  })

  it('treats errors that are not Kafka’s as not retriable', () => {
    expect(isRetriableKafkaError(new TypeError('x'))).toBe(false)
    expect(isRetriableKafkaError('text')).toBe(false)
  })
})

describe('busError', () => {
  it('wraps as BUS_UNAVAILABLE with the retry decision and the cause', () => {
    const cause = new KafkaJSConnectionError('Connection refused')
    const err = busError(cause, 'publish')
    expect(err).toBeInstanceOf(NerveError)
    expect(err).toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true, cause })
    expect(err.message).toBe('Kafka publish failed: Connection refused')
  })

  it('passes our own errors through untouched', () => {
    const own = new NerveError('BUS_CLOSED', 'closed')
    expect(busError(own, 'publish')).toBe(own)
  })
})

describe('backoffDelay', () => {
  it('grows exponentially from the initial delay and stops at the cap', () => {
    const mid = () => 0.5
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, retryPolicy, mid))).toEqual([
      300, 600, 1200, 2400, 4800, 9600, 10_000,
    ])
    expect(backoffDelay(50, retryPolicy, mid)).toBe(10_000)
  })

  it('jitters by ±factor and never exceeds the cap', () => {
    expect(backoffDelay(2, retryPolicy, () => 0)).toBe(960)
    expect(backoffDelay(2, retryPolicy, () => 1)).toBe(1440)
    expect(backoffDelay(9, retryPolicy, () => 1)).toBe(10_000)
  })
})
