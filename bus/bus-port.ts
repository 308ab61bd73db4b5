// The bus across a thread boundary: a stage running in a worker thread reads and writes through the process's
// one bus (the embedded bus owns its SQLite file alone) as if it held it. servePortBus() answers on the owner's
// side of a MessagePort; createPortBus() is the Bus a worker gets. A delivered batch is committed only once
// the worker's handle() resolved (up to the commit bound it resolved with, which crosses back, as does a
// bound moved outside a batch: Subscription.advance), and a publish resolves only once the owner's publish
// did, so the stage's contract (publish, checkpoint, then commit) holds across the hop; a clean stop's
// drain() crosses too, so that the owner delivers (and the worker reads) nothing more. Errors cross as
// NerveError codes.
import type { MessagePort, Worker } from 'node:worker_threads'
import { type ErrorCode, errorCodeOf, NerveError } from '../runtime/errors.ts'
import type {
  Bus,
  BusRecord,
  DeliveredRecord,
  Handled,
  SubscribeOptions,
  Subscription,
  Topic,
} from './bus.ts'
import { openRecordReader, parseReadRecord, type RecordReader } from './embedded-record-reader.ts'
import { parseStoredRecord, recordJson } from './record-json.ts'
import { storageError } from './storage-error.ts'

// A stage thread that reads its records from the embedded bus's file itself (the store writer) opens them here.
export { openRecordReader, type RecordReader, storageError }

type Port = MessagePort | Worker

/** Records [from, to) of one partition. */
export type RecordRange = { partition: number; from: number; to: number }

/**
 * Where a batch lies when the bus delivered it under SubscribeOptions.unread (positions only: the embedded
 * bus honours it), for a thread that reads the records from the bus's file; undefined when the batch
 * carries its values (a bus that does not honour it), to be forwarded as they are.
 */
export function unreadRangeOf(batch: readonly DeliveredRecord<unknown>[]): RecordRange | undefined {
  const first = batch[0]
  if (!first || first.value !== undefined) return undefined
  return { partition: first.partition, from: first.offset, to: (batch.at(-1) ?? first).offset + 1 }
}

/** Worker → owner. */
type Request =
  /**
   * Each record's value as its JSON text, `texts[i]` the value of the record keyed `keys[i]`; `heads`, when
   * the publisher gave heads, the JSON text of an array of them (BusRecord.head; null where a record has none).
   */
  | { t: 'publish'; id: number; topic: string; keys: string[]; texts: string[]; heads?: string }
  | {
      t: 'subscribe'
      id: number
      sub: number
      topic: string
      group: string
      maxBatch?: number
      /** The worker reads the records from the bus's file: send their range only. */
      unread?: boolean
    }
  | { t: 'stop' | 'drain'; id: number; sub: number }
  /** Subscription.advance: a bound the worker's handler moved outside a batch. */
  | { t: 'advance'; id: number; sub: number; partition: number; commit: number }
/** Owner → worker. */
type Call =
  | { t: 'deliver'; id: number; sub: number; batch: DeliveredRecord<unknown>[] }
  /** Records [from, to) of a partition, for the worker to read from the bus's file. */
  | { t: 'deliverRange'; id: number; sub: number; partition: number; from: number; to: number }
  | { t: 'assign' | 'revoke'; id: number; sub: number; partitions: number[] }
/** A message before createCalls() numbers it. */
type Unnumbered<M> = M extends unknown ? Omit<M, 'id'> : never
type Reply = {
  t: 'reply'
  id: number
  ok: boolean
  code?: string
  message?: string
  retriable?: boolean
  /** A delivery's commit bound (Handled), when the worker's handle() resolved with one. */
  commit?: number
}

const failureOf = (id: number, err: unknown): Reply => ({
  t: 'reply',
  id,
  ok: false,
  code: errorCodeOf(err),
  message: err instanceof Error ? err.message : String(err),
  retriable: err instanceof NerveError ? err.retriable : true,
})

const errorOf = (reply: Reply) =>
  new NerveError((reply.code ?? 'INTERNAL') as ErrorCode, reply.message ?? 'Failed across threads.', {
    retriable: reply.retriable ?? true,
  })

/** One side's outstanding calls to the other, answered by `reply` messages. */
function createCalls(port: Port) {
  let nextId = 0
  const waiting = new Map<number, { resolve(handled: Handled): void; reject(err: unknown): void }>()
  return {
    call: (message: Unnumbered<Request | Call>): Promise<Handled> =>
      new Promise((resolve, reject) => {
        const id = nextId++
        waiting.set(id, { resolve, reject })
        port.postMessage({ ...message, id })
      }),
    settle: (reply: Reply) => {
      const waiter = waiting.get(reply.id)
      waiting.delete(reply.id)
      if (reply.ok) waiter?.resolve(reply.commit === undefined ? undefined : { commit: reply.commit })
      else waiter?.reject(errorOf(reply))
    },
    /** The other side is gone: what waits on it fails (a batch is then delivered again). */
    failAll: (err: unknown) => {
      for (const waiter of waiting.values()) waiter.reject(err)
      waiting.clear()
    },
  }
}

/** A record published as its text and head, its value parsed from the text when first read. */
function textRecord(key: string, text: string, head: unknown): BusRecord<unknown> {
  let value: unknown
  return {
    key,
    text,
    head,
    get value() {
      value ??= JSON.parse(text)
      return value
    },
  }
}

export type PortBusServer = {
  /** Feed every message the worker sends (the caller routes its own kinds first). */
  onMessage(message: unknown): void
  /** A new worker on `port` takes over the subscriptions its predecessor made. */
  attach(port: Port): void
  /** The worker died: what waits on it fails, and deliveries fail (to be redelivered) until attach(). */
  detach(err: unknown): void
  /** Stops the subscriptions the worker made. */
  close(): Promise<void>
}

/** The owner's side: runs the worker's publishes and subscriptions on `bus`, answering on the port. */
export function servePortBus(bus: Bus, initialPort: Port): PortBusServer {
  let port: Port | undefined = initialPort
  let calls = createCalls(initialPort)
  const subscriptions = new Map<number, Subscription>()
  const reply = (id: number, work: Promise<unknown>) => {
    const to = port
    work.then(
      () => to?.postMessage({ t: 'reply', id, ok: true } satisfies Reply),
      (err) => to?.postMessage(failureOf(id, err)),
    )
  }
  const callWorker = (message: Unnumbered<Call>) =>
    port
      ? calls.call(message)
      : Promise.reject(
          new NerveError('BUS_UNAVAILABLE', 'The worker thread is restarting.', { retriable: true }),
        )

  /**
   * The owner's in-process readers of the topic get the values, parsed here; its bus writes the texts. A
   * record with a head is parsed only when something reads its value: the embedded bus keeps it unparsed
   * for a reader of heads (the revoke dispatcher), which parses only the correlations it sends.
   */
  const publishTexts = async (m: Extract<Request, { t: 'publish' }>) => {
    const heads = m.heads === undefined ? undefined : (JSON.parse(m.heads) as unknown[])
    return bus.publish(
      { name: m.topic },
      m.texts.map((text, i) => {
        const key = m.keys[i] as string
        const head = heads?.[i] ?? undefined
        return head === undefined ? { key, value: JSON.parse(text), text } : textRecord(key, text, head)
      }),
    )
  }

  const subscribe = async (m: Extract<Request, { t: 'subscribe' }>) => {
    if (subscriptions.has(m.sub)) return
    const subscription = await bus.subscribe(
      { name: m.topic },
      m.group,
      (batch) => {
        // Positions only (the embedded bus honoured `unread`): the worker reads the records itself.
        const range = m.unread ? unreadRangeOf(batch as DeliveredRecord<unknown>[]) : undefined
        if (range) return callWorker({ t: 'deliverRange', sub: m.sub, ...range })
        return callWorker({ t: 'deliver', sub: m.sub, batch: batch as DeliveredRecord<unknown>[] })
      },
      {
        maxBatch: m.maxBatch,
        encoded: true,
        unread: m.unread,
        onAssign: async (partitions) => void (await callWorker({ t: 'assign', sub: m.sub, partitions })),
        onRevoke: async (partitions) => void (await callWorker({ t: 'revoke', sub: m.sub, partitions })),
      },
    )
    subscriptions.set(m.sub, subscription)
  }

  return {
    onMessage: (message) => {
      const m = message as Request | Reply
      if (m.t === 'reply') return calls.settle(m)
      if (m.t === 'publish') return reply(m.id, publishTexts(m))
      if (m.t === 'subscribe') return reply(m.id, subscribe(m))
      if (m.t === 'advance')
        return reply(m.id, subscriptions.get(m.sub)?.advance?.(m.partition, m.commit) ?? Promise.resolve())
      if (m.t === 'drain') return reply(m.id, subscriptions.get(m.sub)?.drain?.() ?? Promise.resolve())
      if (m.t === 'stop') {
        const subscription = subscriptions.get(m.sub)
        subscriptions.delete(m.sub)
        return reply(m.id, subscription?.stop() ?? Promise.resolve())
      }
    },
    attach: (next) => {
      port = next
      calls = createCalls(next)
    },
    detach: (err) => {
      port = undefined
      calls.failAll(err)
    },
    close: async () => {
      await Promise.all([...subscriptions.values()].map((s) => s.stop()))
      subscriptions.clear()
    },
  }
}

export type PortBus = Bus & {
  /** Feed every message the owner sends. */
  onMessage(message: unknown): void
}

/**
 * The worker's side: a Bus whose records live in the owner thread's bus. With `recordsFile` (the embedded
 * bus's file), the worker reads the records it is handed from that file on a connection of its own, so
 * that their text does not cross the owner's thread; the owner still decides what is delivered and commits.
 */
export function createPortBus(
  port: Port,
  partitions: number,
  portOptions: { recordsFile?: string } = {},
): PortBus {
  const calls = createCalls(port)
  const handlers = new Map<
    number,
    { topic: string; handle: (batch: never[]) => Promise<Handled>; options: SubscribeOptions }
  >()
  let reader: RecordReader | undefined
  const readRange = (
    topic: string,
    m: Extract<Call, { t: 'deliverRange' }>,
    withoutRaw: boolean | undefined,
  ): DeliveredRecord<unknown>[] => {
    reader ??= openRecordReader(portOptions.recordsFile as string)
    return reader.read(topic, m.partition, m.from, m.to, { withoutRaw }).map((r) => ({
      key: r.key,
      value: parseReadRecord(r),
      partition: m.partition,
      offset: r.offset,
    }))
  }
  const subscriptions = new Set<Subscription>()
  let nextSub = 0
  let closed = false
  const refuseClosed = () => {
    if (closed) throw new NerveError('BUS_CLOSED', 'The bus is closed.')
  }
  const answer = (id: number, work: Promise<Handled>) =>
    work.then(
      (handled) =>
        port.postMessage(
          (handled
            ? { t: 'reply', id, ok: true, commit: handled.commit }
            : { t: 'reply', id, ok: true }) satisfies Reply,
        ),
      (err) => port.postMessage(failureOf(id, err)),
    )

  return {
    onMessage: (message) => {
      const m = message as Call | Reply
      if (m.t === 'reply') return calls.settle(m)
      const target = handlers.get(m.sub)
      if (!target)
        return port.postMessage(
          failureOf(
            m.id,
            new NerveError('BUS_UNAVAILABLE', 'Not subscribed yet (a worker starting).', {
              retriable: true,
            }),
          ),
        )
      if (m.t === 'deliver') {
        // The owner sends each value as its JSON text (a copy of a string), parsed here, on this thread.
        for (const record of m.batch) record.value = parseStoredRecord(record.value as string)
        return void answer(m.id, target.handle(m.batch as never[]))
      }
      if (m.t === 'deliverRange') {
        let batch: DeliveredRecord<unknown>[]
        try {
          batch = readRange(target.topic, m, target.options.withoutRaw)
        } catch (err) {
          return port.postMessage(failureOf(m.id, storageError(err, 'reading')))
        }
        return void answer(m.id, batch.length > 0 ? target.handle(batch as never[]) : Promise.resolve())
      }
      const hook = m.t === 'assign' ? target.options.onAssign : target.options.onRevoke
      return void answer(m.id, hook ? hook(m.partitions).then(() => undefined) : Promise.resolve())
    },
    publish: async <T>(topic: Topic<T>, records: readonly BusRecord<T>[]) => {
      refuseClosed()
      if (records.length === 0) return
      // As JSON text, written here: a string crosses for a copy, where the structured clone of a correlation
      // cost the owner's thread more to rebuild than to parse, and its bus then wrote it as JSON again.
      const texts = records.map((record, i) => recordJson(record.value, i))
      // The heads cross as one JSON text: cheaper for the owner to parse than their structured clone is to
      // rebuild (about 6,000 instructions per correlation), and still far less than the records' texts.
      const heads = records.some((r) => r.head !== undefined)
        ? JSON.stringify(records.map((r) => r.head ?? null))
        : undefined
      await calls.call({ t: 'publish', topic: topic.name, keys: records.map((r) => r.key), texts, heads })
    },
    subscribe: async <T>(
      topic: Topic<T>,
      group: string,
      handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
      options: SubscribeOptions = {},
    ): Promise<Subscription> => {
      refuseClosed()
      const sub = nextSub++
      handlers.set(sub, {
        topic: topic.name,
        handle: handle as (batch: never[]) => Promise<Handled>,
        options,
      })
      try {
        await calls.call({
          t: 'subscribe',
          sub,
          topic: topic.name,
          group,
          maxBatch: options.maxBatch,
          unread: portOptions.recordsFile !== undefined,
        })
      } catch (err) {
        handlers.delete(sub)
        throw err
      }
      const subscription = {
        // Never rejects (bus.ts): an owner that is gone meanwhile commits nothing, as a stopped bus.
        advance: (partition: number, commit: number) =>
          calls.call({ t: 'advance', sub, partition, commit }).then(
            () => undefined,
            () => undefined,
          ),
        // Never rejects either: an owner that is gone delivers nothing more.
        drain: () =>
          calls.call({ t: 'drain', sub }).then(
            () => undefined,
            () => undefined,
          ),
        stop: async () => {
          if (!subscriptions.delete(subscription)) return
          await calls.call({ t: 'stop', sub })
          handlers.delete(sub)
        },
      }
      subscriptions.add(subscription)
      return subscription
    },
    partitionsOf: () => partitions,
    /** Stops this side's subscriptions (their batches in flight finish and commit); the owner's bus stays. */
    close: async () => {
      closed = true
      await Promise.all([...subscriptions].map((s) => s.stop()))
      reader?.close()
      reader = undefined
    },
  }
}
