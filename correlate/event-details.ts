// The descriptive part of a buffered event (what the correlation record shows), shared between events
// that say the same thing: most alerts of one host repeat a few Falco rules, most calls of one principal
// repeat a few actions. Lookups compare fields directly (no key strings are built on the hot path). A new
// detail takes the shared copy of each repeated value (rule names, priorities, tags, actions, regions…)
// and holds it until the detail is forgotten: a value only released details held is dropped with them.
import type { CoreFields, EdgeFields } from '../schemas/types.ts'
import type { CoreDetail, EdgeDetail } from './entry-slots.ts'
import { createSharedValues } from './shared-values.ts'

export type DetailInterner = {
  edge(edge: EdgeFields): EdgeDetail
  core(core: CoreFields): CoreDetail
  /** A detail read back from a checkpoint. */
  restore(detail: EdgeDetail | CoreDetail): EdgeDetail | CoreDetail
  /**
   * Drops a detail no buffered entry holds any more (agent-windows.ts tells), so what the watched agent
   * made different in every event is released with its events rather than kept until the cache fills.
   */
  forget(detail: EdgeDetail | CoreDetail): void
  /** Estimated heap bytes of the shared values the interned details hold (shared-values.ts). */
  bytes(): number
  /** Distinct shared values and tag lists held. */
  sharedSize(): number
}

const perKeyLimit = 64
const keyLimit = 20_000

const sameTags = (a: readonly string[], b: readonly string[]) => {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function createDetailInterner(): DetailInterner {
  const edges = new Map<string, EdgeDetail[]>()
  const cores = new Map<string, CoreDetail[]>()
  const shared = createSharedValues(keyLimit)
  const hold = shared.hold
  // Details whose values were given back: a detail is forgotten once, whatever calls forget again.
  const released = new WeakSet<EdgeDetail | CoreDetail>()

  const remember = <D>(map: Map<string, D[]>, key: string, detail: D): D => {
    const list = map.get(key)
    if (!list) {
      if (map.size >= keyLimit) map.clear()
      // A list of one: `[]` and push reserve room for 17, and most principals and hosts hold one detail
      // at a time (a new principal per call is common in a trail: a list per buffered call).
      map.set(key, [detail])
      return detail
    }
    if (list.length >= perKeyLimit) list.shift()
    list.push(detail)
    return detail
  }

  /** The details one host's alerts share (edge fields or a restored detail: same field names). */
  const internEdge = (d: Omit<EdgeDetail, 'side'>): EdgeDetail => {
    for (const known of edges.get(d.hostname) ?? []) {
      if (
        known.rule === d.rule &&
        known.priority === d.priority &&
        known.source === d.source &&
        sameTags(known.tags, d.tags)
      )
        return known
    }
    return remember(edges, d.hostname, {
      side: 'edge',
      rule: hold(d.rule),
      priority: hold(d.priority) as EdgeDetail['priority'],
      source: hold(d.source),
      hostname: d.hostname,
      tags: shared.holdList(d.tags),
    })
  }

  /**
   * The known detail of the principal's calls with these fields. Positional: each field is read once
   * from the call (whose objects come in many shapes), then compared with every known detail.
   */
  const knownCore = (
    principal: string,
    principalId: string | undefined,
    action: string,
    readOnly: boolean | undefined,
    errorCode: string | undefined,
    sourceIp: string | undefined,
    region: string | undefined,
    accountId: string | undefined,
    target: string | undefined,
  ): CoreDetail | undefined => {
    const list = cores.get(principal)
    if (list === undefined) return undefined
    for (let i = 0; i < list.length; i++) {
      const known = list[i] as CoreDetail
      if (
        known.action === action &&
        known.principal_id === principalId &&
        known.read_only === readOnly &&
        known.error_code === errorCode &&
        known.source_ip === sourceIp &&
        known.region === region &&
        known.account_id === accountId &&
        known.target === target
      )
        return known
    }
    return undefined
  }

  /**
   * A new detail of `d`'s fields, holding the shared copy of each repeated value. Every member is present
   * (undefined when the call had none), so that all core details have one class and knownCore's loop reads
   * them directly; what writes a detail out (the correlation record, the checkpoint) skips the undefined.
   */
  const addCore = (principal: string, d: CoreFields | CoreDetail): CoreDetail => {
    // The principal is the lookup key: one per list already.
    const detail: CoreDetail = {
      side: 'core',
      action: hold(d.action),
      principal,
      principal_id: d.principal_id === undefined ? undefined : hold(d.principal_id),
      read_only: d.read_only,
      error_code: d.error_code === undefined ? undefined : hold(d.error_code),
      source_ip: d.source_ip,
      region: d.region === undefined ? undefined : hold(d.region),
      account_id: d.account_id === undefined ? undefined : hold(d.account_id),
      target: d.target === undefined ? undefined : hold(d.target),
    }
    return remember(cores, principal, detail)
  }

  const internCore = (d: CoreDetail): CoreDetail =>
    knownCore(
      d.principal,
      d.principal_id,
      d.action,
      d.read_only,
      d.error_code,
      d.source_ip,
      d.region,
      d.account_id,
      d.target,
    ) ?? addCore(d.principal, d)

  // A call is compared with the known details by its own fields: a detail object is made only for a new one.
  const core = (c: CoreFields): CoreDetail => {
    const principal = c.principal_arn ?? c.session_issuer_arn ?? ''
    return (
      knownCore(
        principal,
        c.principal_id,
        c.action,
        c.read_only,
        c.error_code,
        c.source_ip,
        c.region,
        c.account_id,
        c.target,
      ) ?? addCore(principal, c)
    )
  }

  const releaseValues = (detail: EdgeDetail | CoreDetail) => {
    if (released.has(detail)) return
    released.add(detail)
    if (detail.side === 'edge') {
      shared.release(detail.rule)
      shared.release(detail.priority)
      shared.release(detail.source)
      shared.releaseList(detail.tags)
      return
    }
    shared.release(detail.action)
    if (detail.principal_id !== undefined) shared.release(detail.principal_id)
    if (detail.error_code !== undefined) shared.release(detail.error_code)
    if (detail.region !== undefined) shared.release(detail.region)
    if (detail.account_id !== undefined) shared.release(detail.account_id)
    if (detail.target !== undefined) shared.release(detail.target)
  }

  const forget = (detail: EdgeDetail | CoreDetail) => {
    // Its values go back even when the lookup lists no longer name it (dropped past their limits while
    // still buffered): the hold was taken when it was made.
    releaseValues(detail)
    const map: Map<string, (EdgeDetail | CoreDetail)[]> = detail.side === 'edge' ? edges : cores
    const key = detail.side === 'edge' ? detail.hostname : detail.principal
    const list = map.get(key)
    if (!list) return
    const at = list.indexOf(detail)
    if (at === -1) return
    list.splice(at, 1)
    if (list.length === 0) map.delete(key)
  }

  return {
    edge: internEdge,
    core,
    restore: (d) => (d.side === 'edge' ? internEdge(d) : internCore(d)),
    forget,
    bytes: shared.bytes,
    sharedSize: shared.size,
  }
}
