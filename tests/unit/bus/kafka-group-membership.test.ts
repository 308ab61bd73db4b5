import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { createGroupMembership } from '../../../bus/kafka-group-membership.ts'

const { KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } = kafkajs
const sessionTimeout = 30_000

/** What a broker answers, as kafkajs raises it. */
const brokerError = (type: string, code: number) =>
  new KafkaJSProtocolError({ type, code, retriable: false, message: type } as unknown as Error)

function setup() {
  let time = 1_000_000
  const membership = createGroupMembership(sessionTimeout, () => time)
  return {
    membership,
    advance: (ms: number) => {
      time += ms
    },
  }
}

describe('kafka group membership', () => {
  it('holds from a join until the session timeout passes without an answered heartbeat', () => {
    const { membership, advance } = setup()
    expect(membership.current()).toBe(false)
    expect(membership.joined('member-1')).toBe(false)
    advance(sessionTimeout - 1)
    expect(membership.current()).toBe(true)
    membership.heartbeat()
    advance(sessionTimeout - 1)
    expect(membership.current()).toBe(true)
    advance(1)
    expect(membership.current()).toBe(false)
    // A heartbeat answered after all: the broker still knew the member.
    membership.heartbeat()
    expect(membership.current()).toBe(true)
  })

  it('counts a heartbeat from when it was sent, though a stalled process handles the answer late', () => {
    const { membership, advance } = setup()
    membership.joined('member-1')
    advance(1_000)
    // Sent now; the process stalls 20 s before it handles the answer.
    advance(20_000)
    membership.answered('Fetch', 5)
    membership.answered('Heartbeat', 20_000)
    membership.heartbeat()
    advance(sessionTimeout - 20_000)
    expect(membership.current()).toBe(false)
  })

  it('is gone from an answer saying so, through kafkajs’s retry wrapper, until the next join; other errors change nothing', () => {
    const { membership } = setup()
    membership.joined('member-1')
    expect(membership.failed(new Error('Connection timeout'))).toBe(false)
    expect(membership.current()).toBe(true)
    const retried = new KafkaJSNumberOfRetriesExceeded(brokerError('REBALANCE_IN_PROGRESS', 27), {
      retryCount: 5,
      retryTime: 100,
    })
    expect(membership.failed(retried)).toBe(true)
    membership.heartbeat()
    expect(membership.current()).toBe(false)
    // A rebalance the member stayed in: it keeps what the join names again.
    expect(membership.joined('member-1')).toBe(false)
    expect(membership.current()).toBe(true)
  })

  it('calls a join after an eviction, or under a new member id, a new membership', () => {
    const { membership } = setup()
    membership.joined('member-1')
    expect(membership.failed(brokerError('UNKNOWN_MEMBER_ID', 25))).toBe(true)
    expect(membership.joined('member-2')).toBe(true)
    expect(membership.failed(brokerError('ILLEGAL_GENERATION', 22))).toBe(true)
    expect(membership.joined('member-2')).toBe(true)
    // kafkajs rejoined on its own after UNKNOWN_MEMBER_ID: only the member id tells.
    expect(membership.joined('member-3')).toBe(true)
    expect(membership.joined('member-3')).toBe(false)
  })

  it('owns nothing from a rebalance or a crash until the next join', () => {
    const { membership } = setup()
    membership.joined('member-1')
    membership.left()
    expect(membership.current()).toBe(false)
    expect(membership.joined('member-1')).toBe(false)
    expect(membership.current()).toBe(true)
  })
})
