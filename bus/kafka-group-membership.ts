// Whether this consumer is surely still a member of its group, as far as the broker can tell; pure, on an
// injected clock. kafkajs says so only in part: it emits REBALANCING when the group rebalances, but a
// member the broker evicted (no heartbeat for session_timeout: a stalled process) learns it from its next
// heartbeat or commit, and rejoins with no event before the GROUP_JOIN. Meanwhile the group has given its
// partitions to others. So a member counts as gone:
// - once session_timeout has passed since the broker last heard from it: the send of the last heartbeat
//   (or group sync) it answered, not the answer's arrival, which a busy event loop may handle much later;
// - from a heartbeat or commit error saying it is gone (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//   REBALANCE_IN_PROGRESS), from REBALANCING, or from a crash, until the next GROUP_JOIN.
// A later answered heartbeat lifts the first (the broker still knew it); only a GROUP_JOIN lifts the rest.
// A GROUP_JOIN under another member id, or after UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION, is a new
// membership: partitions it names again may have been handled elsewhere meanwhile, so they are restored
// again rather than kept.

/** Broker answers meaning the member is no longer in the group's current generation. */
const goneCodes = new Set(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS'])
/** Of those, the ones after which another member may have held this member's partitions. */
const evictedCodes = new Set(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION'])
/** Requests whose answer proves membership: the broker heard the member when they were sent. */
const provingRequests = new Set(['Heartbeat', 'SyncGroup'])

export type GroupMembership = {
  /** A network request was answered `durationMs` after it was sent (kafkajs's REQUEST event). */
  answered(apiName: string, durationMs: number): void
  /** The broker accepted a heartbeat (kafkajs's HEARTBEAT event). */
  heartbeat(): void
  /** The member joined (kafkajs's GROUP_JOIN); true when it is a new membership (see above). */
  joined(memberId: string): boolean
  /** The group rebalances, or the consumer crashed: nothing is surely this member's until it joins. */
  left(): void
  /** A heartbeat or commit failed: true when `err` says the member is gone (then it is, until it joins). */
  failed(err: unknown): boolean
  /** True while the member surely still holds what its last join assigned it. */
  current(): boolean
}

/** The broker's error type (kafkajs's KafkaJSProtocolError.type), through any errors wrapping it. */
function brokerErrorType(err: unknown): string | undefined {
  let current: unknown = err
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    const type = (current as { type?: unknown }).type
    if (typeof type === 'string') return type
    current = current.cause ?? (current as { originalError?: unknown }).originalError
  }
  return undefined
}

export function createGroupMembership(sessionTimeoutMs: number, now: () => number): GroupMembership {
  let member = false
  let evicted = false
  let memberId: string | undefined
  let heardAt = Number.NEGATIVE_INFINITY
  /** The earliest send among answered proving requests since the last proof: the safe side of a pairing. */
  let sentAt: number | undefined

  const heard = () => {
    heardAt = sentAt ?? now()
    sentAt = undefined
  }

  return {
    answered: (apiName, durationMs) => {
      if (!provingRequests.has(apiName)) return
      const sent = now() - Math.max(0, durationMs)
      sentAt = sentAt === undefined ? sent : Math.min(sentAt, sent)
    },
    heartbeat: heard,
    joined: (id) => {
      const renewed = evicted || (memberId !== undefined && memberId !== id)
      member = true
      evicted = false
      memberId = id
      heard()
      return renewed
    },
    left: () => {
      member = false
    },
    failed: (err) => {
      const type = brokerErrorType(err)
      if (type === undefined || !goneCodes.has(type)) return false
      member = false
      if (evictedCodes.has(type)) evicted = true
      return true
    },
    current: () => member && now() - heardAt < sessionTimeoutMs,
  }
}
