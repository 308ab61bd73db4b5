// An in-memory double of the part of kafkajs the Kafka bus uses, modelled on kafkajs 2.2 semantics:
// fetches start at the last resolved offset (else the group's commit, else earliest/latest); resolveOffset(o)
// marks o+1 as next; seek(o) makes o the next fetch and the batch in hand stale (kafkajs with autoCommit off
// resolves o-1); commits store "next offset" strings per group; a throwing eachBatch is fetched again
// from the resolved offset; members of one group split partitions round-robin and get GROUP_JOIN on every
// rebalance; commits from a member that lost the partition fail. A heartbeat the broker answers emits
// HEARTBEAT (after the network REQUEST event, as kafkajs does); an idle member heartbeats every
// heartbeatInterval. A member the broker evicted (evict(): it missed heartbeats) is told nothing: it fetches
// on, and its next heartbeat or commit fails with UNKNOWN_MEMBER_ID, after which it joins again as a new
// member (kafkajs's runner). consumer.commitOffsets (outside a batch) is checked as a broker checks it: the
// member must be in the group, but a broker does not know which partitions a member was assigned, so it
// commits any (fencing a partition that moved away is the bus's own work). consumer.pause of its topic stops
// its fetches (a batch fetched before is still delivered, as kafkajs may), while it heartbeats, takes part
// in rebalances and commits as an idle member does; the pause outlives a rebalance, as in kafkajs; a batch's
// payload.pause() stops fetching its partition. crash() is kafkajs's onCrash: the runner stops (after the
// batch in flight) and the member leaves; with no consumer group any more, pause() throws; a restart later
// joins as a new member with a new consumer group, which has no pause; stop() then only cancels that
// restart. It is not a broker: it proves the bus's own logic without one. The real thing is in
// tests/integration (NERVE_KAFKA_BROKERS).
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import kafkajs, { type KafkaMessage } from 'kafkajs'
import type { KafkaClient, KafkaClientConfig } from '../../../bus/kafka-bus.ts'

// kafkajs is CommonJS: its error classes are reachable through the default export only.
const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } = kafkajs

/** A broker's answer to a member it no longer knows (error code 25): kafkajs marks it not retriable. */
const memberGone = () =>
  new KafkaJSProtocolError({
    type: 'UNKNOWN_MEMBER_ID',
    code: 25,
    retriable: false,
    message: 'The coordinator is not aware of this member',
  } as unknown as Error)

type Stored = { key: Buffer | null; value: Buffer | null; timestamp: number }
type Member = {
  groupId: string
  topic: string
  assigned: number[]
  running: boolean
  /** Dropped by the broker for missed heartbeats; the member itself does not know yet. */
  evicted: boolean
  emit(assigned: number[]): void
  /** kafkajs's REBALANCING: the member learnt that its group rebalances, before it rejoins. */
  rebalancing(): void
  /** kafkajs's onCrash: see crash() below. */
  crash(restart: boolean): Promise<void>
}

export type KafkaDouble = {
  createClient(options: KafkaClientConfig): KafkaClient
  /** Makes every call fail as an unreachable cluster does (retriable). */
  setDown(down: boolean): void
  log(topic: string): Stored[][]
  created: { topic: string; numPartitions: number; configEntries?: { name: string; value: string }[] }[]
  clients: KafkaClientConfig[]
  /** Every produce request: its topic and the bytes (key + value) of each partition's batch in it. */
  produced: { topic: string; batchBytes: Map<number, number> }[]
  /** A broker's message.max.bytes: a request with a bigger partition batch fails, not retriable. */
  setMaxBatchBytes(bytes: number | undefined): void
  /** Options each consumer was created with, the heartbeats it sent, its stop() calls, and its pause. */
  consumers: { options: Record<string, unknown>; heartbeats: number; stops: number; paused(): boolean }[]
  committed(groupId: string, topic: string, partition: number): number | undefined
  /** Every commit the double stored, in order: by which member, and whether inside a batch (eachBatch). */
  commits: { groupId: string; memberId: string; partition: number; offset: number; inBatch: boolean }[]
  /**
   * Holds every consumer.commitOffsets call already sent (a request on the wire) until the returned
   * release() is called (held() counts them); each then lands as the broker took it when it arrived.
   */
  holdCommits(): { release(): void; held(): number }
  /** Tells the group's members that it rebalances (REBALANCING), without assigning anything yet. */
  startRebalance(groupId: string): void
  /**
   * What a broker does to a member that missed heartbeats past the session timeout: drops it from the
   * group (the `index`-th running member, in join order) and gives its partitions to the others, telling
   * the dropped member nothing.
   */
  evict(groupId: string, index?: number): void
  /**
   * What kafkajs does when its runner crashes (a retriable error: KafkaJSNumberOfRetriesExceeded) to the
   * group's first running member: stops it, emits CRASH, and with `restart` runs it again soon after.
   */
  crash(groupId: string, restart: boolean): Promise<void>
}

export function createKafkaDouble(): KafkaDouble {
  const topics = new Map<string, Stored[][]>()
  const commits = new Map<string, number>()
  const commitLog: KafkaDouble['commits'] = []
  const members = new Set<Member>()
  const created: KafkaDouble['created'] = []
  const clients: KafkaClientConfig[] = []
  const produced: KafkaDouble['produced'] = []
  const consumerRecords: KafkaDouble['consumers'] = []
  let maxBatchBytes: number | undefined
  let commitsHeld: Promise<void> | undefined
  let heldCount = 0
  let down = false

  const unreachable = () => {
    if (down) {
      throw new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection refused'), {
        retryCount: 8,
        retryTime: 10,
      })
    }
  }
  const partitionsOf = (topic: string) => {
    const log = topics.get(topic)
    if (!log) throw new Error(`This server does not host this topic-partition: ${topic}`)
    return log
  }
  const commitKey = (g: string, t: string, p: number) => `${g}\u0000${t}\u0000${p}`

  const rebalance = (groupId: string, topic: string) => {
    const group = [...members].filter(
      (m) => m.groupId === groupId && m.topic === topic && m.running && !m.evicted,
    )
    const count = partitionsOf(topic).length
    group.forEach((m, i) => {
      m.assigned = Array.from({ length: count }, (_, p) => p).filter((p) => p % group.length === i)
    })
    for (const m of group) m.emit(m.assigned)
  }

  const admin = () => ({
    connect: async () => unreachable(),
    disconnect: async () => undefined,
    createTopics: async ({ topics: specs }: { topics: KafkaDouble['created'] }) => {
      unreachable()
      let any = false
      for (const spec of specs) {
        if (topics.has(spec.topic)) continue
        topics.set(
          spec.topic,
          Array.from({ length: spec.numPartitions }, () => []),
        )
        created.push(spec)
        any = true
      }
      return any
    },
    fetchTopicMetadata: async ({ topics: names }: { topics: string[] }) => {
      unreachable()
      return {
        topics: names.map((name) => ({
          name,
          partitions: partitionsOf(name).map((_, partitionId) => ({
            partitionId,
            leader: 1,
            replicas: [1],
            isr: [1],
          })),
        })),
      }
    },
    fetchTopicOffsets: async (name: string) => {
      unreachable()
      return partitionsOf(name).map((log, partition) => ({
        partition,
        offset: String(log.length),
        high: String(log.length),
        low: '0',
      }))
    },
  })

  type Partitioner = (args: {
    topic: string
    partitionMetadata: { partitionId: number }[]
    message: { key?: string | null }
  }) => number

  const producer = ({ createPartitioner }: { createPartitioner: () => Partitioner }) => {
    const partition = createPartitioner()
    return {
      connect: async () => unreachable(),
      disconnect: async () => undefined,
      send: async ({
        topic,
        messages,
      }: {
        topic: string
        messages: { key: string; value: string | null }[]
      }) => {
        unreachable()
        const log = partitionsOf(topic)
        const partitionMetadata = log.map((_, partitionId) => ({ partitionId }))
        const batchBytes = new Map<number, number>()
        for (const message of messages) {
          const p = partition({ topic, partitionMetadata, message })
          const bytes = Buffer.byteLength(message.key) + Buffer.byteLength(message.value ?? '')
          batchBytes.set(p, (batchBytes.get(p) ?? 0) + bytes)
        }
        produced.push({ topic, batchBytes })
        if (maxBatchBytes !== undefined && [...batchBytes.values()].some((b) => b > (maxBatchBytes ?? b))) {
          // What a broker answers (error code 10): kafkajs marks it not retriable.
          const brokerError = {
            type: 'MESSAGE_TOO_LARGE',
            code: 10,
            retriable: false,
            message: 'The request included a message larger than the max message size the server will accept',
          }
          throw new KafkaJSProtocolError(brokerError as unknown as Error)
        }
        for (const message of messages) {
          const p = partition({ topic, partitionMetadata, message })
          log[p]?.push({
            key: Buffer.from(message.key),
            value: message.value === null ? null : Buffer.from(message.value),
            timestamp: Date.now(),
          })
        }
        return []
      },
    }
  }

  const consumer = (options: { groupId: string; heartbeatInterval?: number }) => {
    const { groupId } = options
    const heartbeatInterval = options.heartbeatInterval ?? 3_000
    const listeners = new Map<string, ((event: { payload: unknown }) => void)[]>()
    const resolved = new Map<number, number>()
    /** Partitions sought since their last fetch: the batch in hand is stale. */
    const sought = new Set<number>()
    /** Partitions a batch's payload.pause() paused. */
    const pausedParts = new Set<number>()
    let topic = ''
    let paused = false
    /** kafkajs after a crash: its consumer group is gone (pause() throws) until a restart makes one. */
    let groupless = false
    let restartTimer: NodeJS.Timeout | undefined
    let runWith: Parameters<typeof run>[0] | undefined
    const record = {
      options: options as Record<string, unknown>,
      heartbeats: 0,
      stops: 0,
      paused: () => paused || pausedParts.size > 0,
    }
    consumerRecords.push(record)
    let fromBeginning = false
    let loop: Promise<void> | undefined
    let joins = 0
    let memberId = ''
    let lastHeartbeat = 0
    const emitEvent = (event: string, payload: unknown) => {
      for (const listener of listeners.get(event) ?? []) listener({ payload })
    }
    const member: Member = {
      groupId,
      topic: '',
      assigned: [],
      running: false,
      evicted: false,
      emit: (assigned) => {
        for (const p of [...resolved.keys()]) if (!assigned.includes(p)) resolved.delete(p)
        memberId ||= `${groupId}-member-${++joins}`
        emitEvent('consumer.group_join', {
          groupId,
          memberId,
          duration: 0,
          memberAssignment: { [topic]: [...assigned] },
        })
      },
      rebalancing: () => emitEvent('consumer.rebalancing', { groupId, memberId }),
      crash: async (restart) => {
        member.running = false
        await loop
        members.delete(member)
        rebalance(groupId, topic)
        groupless = true
        paused = false
        pausedParts.clear()
        memberId = ''
        resolved.clear()
        const error = new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection error'), {
          retryCount: 5,
          retryTime: 50,
        })
        emitEvent('consumer.crash', { error, groupId, restart })
        if (restart && runWith) {
          const again = runWith
          restartTimer = setTimeout(() => void run(again), 50)
        }
      },
    }
    /** kafkajs's runner after UNKNOWN_MEMBER_ID: forgets its member id and positions, and joins again. */
    const rejoin = () => {
      member.evicted = false
      memberId = ''
      resolved.clear()
      rebalance(groupId, topic)
    }
    const heartbeat = () => {
      if (member.evicted) throw memberGone()
      record.heartbeats++
      lastHeartbeat = Date.now()
      emitEvent('consumer.network.request', { apiName: 'Heartbeat', duration: 0 })
      emitEvent('consumer.heartbeat', { groupId, memberId })
    }

    const position = (p: number, log: Stored[]) =>
      resolved.get(p) ?? commits.get(commitKey(groupId, topic, p)) ?? (fromBeginning ? 0 : log.length)

    const run = async (opts: { eachBatch: (payload: unknown) => Promise<void> }) => {
      const { eachBatch } = opts
      runWith = opts
      groupless = false
      member.running = true
      members.add(member)
      rebalance(groupId, topic)
      loop = (async () => {
        while (member.running) {
          let fetched = false
          for (const p of [...member.assigned]) {
            if (!member.running || paused) break
            if (pausedParts.has(p)) continue
            const log = partitionsOf(topic)[p] ?? []
            sought.delete(p)
            const from = position(p, log)
            const slice = log.slice(from, from + 50)
            if (slice.length === 0) continue
            fetched = true
            const messages: KafkaMessage[] = slice.map((m, i) => ({
              key: m.key,
              value: m.value,
              offset: String(from + i),
              timestamp: String(m.timestamp),
              attributes: 0,
              headers: {},
            }))
            const owns = () => member.assigned.includes(p)
            const payload = {
              batch: { topic, partition: p, highWatermark: String(log.length), messages },
              resolveOffset: (offset: string) => resolved.set(p, Number(offset) + 1),
              heartbeat: async () => heartbeat(),
              pause: () => {
                pausedParts.add(p)
                return () => pausedParts.delete(p)
              },
              isRunning: () => member.running,
              isStale: () => !owns() || sought.has(p),
              uncommittedOffsets: () => ({
                topics: [
                  {
                    topic,
                    partitions: [...resolved].map(([partition, o]) => ({ partition, offset: String(o) })),
                  },
                ],
              }),
              commitOffsetsIfNecessary: async (offsets: {
                topics: { topic: string; partitions: { partition: number; offset: string }[] }[]
              }) => {
                if (member.evicted) throw memberGone()
                for (const t of offsets.topics) {
                  for (const { partition, offset } of t.partitions) {
                    if (!member.assigned.includes(partition))
                      throw new Error('The coordinator is not aware of this member')
                    commits.set(commitKey(groupId, t.topic, partition), Number(offset))
                    commitLog.push({ groupId, memberId, partition, offset: Number(offset), inBatch: true })
                  }
                }
              },
            }
            try {
              await eachBatch(payload)
            } catch {
              if (member.evicted) rejoin()
              await sleep(5)
            }
            // A fetch is network I/O: never spin on microtasks alone.
            await nextTurn()
          }
          if (!fetched) {
            // kafkajs heartbeats after a fetch that brought nothing, once per heartbeatInterval.
            if (member.running && Date.now() >= lastHeartbeat + heartbeatInterval) {
              try {
                heartbeat()
              } catch {
                rejoin()
              }
            }
            await sleep(5)
          }
        }
      })()
    }

    return {
      events: {
        GROUP_JOIN: 'consumer.group_join',
        HEARTBEAT: 'consumer.heartbeat',
        CRASH: 'consumer.crash',
        REBALANCING: 'consumer.rebalancing',
        REQUEST: 'consumer.network.request',
      },
      on: (event: string, listener: (event: { payload: unknown }) => void) => {
        listeners.set(event, [...(listeners.get(event) ?? []), listener])
        return () => undefined
      },
      connect: async () => unreachable(),
      subscribe: async (opts: { topics: string[]; fromBeginning?: boolean }) => {
        topic = opts.topics[0] ?? ''
        member.topic = topic
        fromBeginning = opts.fromBeginning ?? false
        partitionsOf(topic)
      },
      run,
      commitOffsets: async (offsets: { topic: string; partition: number; offset: string }[]) => {
        // kafkajs's runner: a consumer that is not running commits nothing, and says nothing.
        if (!member.running) return
        if (member.evicted) throw memberGone()
        const id = memberId
        if (commitsHeld) {
          heldCount++
          await commitsHeld
        }
        for (const { topic: t, partition, offset } of offsets) {
          commits.set(commitKey(groupId, t, partition), Number(offset))
          commitLog.push({ groupId, memberId: id, partition, offset: Number(offset), inBatch: false })
        }
      },
      pause: (topicPartitions: { topic: string }[]) => {
        if (groupless)
          throw new Error('Consumer group was not initialized, consumer#run must be called first')
        if (topicPartitions.some((t) => t.topic === topic)) paused = true
      },
      resume: (topicPartitions: { topic: string }[]) => {
        if (topicPartitions.some((t) => t.topic === topic)) paused = false
      },
      seek: ({ partition, offset }: { topic: string; partition: number; offset: string }) => {
        resolved.set(partition, Number(offset))
        sought.add(partition)
      },
      stop: async () => {
        record.stops++
        clearTimeout(restartTimer)
        if (!member.running) return
        member.running = false
        await loop
        members.delete(member)
        rebalance(groupId, topic)
      },
      disconnect: async () => undefined,
    }
  }

  return {
    createClient: (options) => {
      clients.push(options)
      return { admin, producer, consumer } as unknown as KafkaClient
    },
    setDown: (value) => {
      down = value
    },
    log: (name) => partitionsOf(name),
    created,
    clients,
    produced,
    setMaxBatchBytes: (bytes) => {
      maxBatchBytes = bytes
    },
    consumers: consumerRecords,
    committed: (g, t, p) => commits.get(commitKey(g, t, p)),
    commits: commitLog,
    holdCommits: () => {
      let release = () => {}
      heldCount = 0
      commitsHeld = new Promise((resolve) => {
        release = () => {
          commitsHeld = undefined
          resolve()
        }
      })
      return { release, held: () => heldCount }
    },
    startRebalance: (groupId) => {
      for (const m of members) if (m.groupId === groupId && m.running) m.rebalancing()
    },
    evict: (groupId, index = 0) => {
      const group = [...members].filter((m) => m.groupId === groupId && m.running && !m.evicted)
      const dropped = group[index]
      if (!dropped) throw new Error(`No member ${index} in group ${groupId}`)
      dropped.evicted = true
      rebalance(groupId, dropped.topic)
    },
    crash: async (groupId, restart) => {
      const crashed = [...members].find((m) => m.groupId === groupId && m.running)
      if (!crashed) throw new Error(`No running member in group ${groupId}`)
      await crashed.crash(restart)
    },
  }
}
