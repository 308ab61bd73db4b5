// Raw JSON items → normalized, identified events: the one path shared by the HTTP receivers and
// `nerve replay`. No bus, no HTTP, no clock. Credential links are learned from every issuing event first
// and applied second, so an issuing record that comes after its first use in the same request still names
// the workload; replay, which reads its input in parts, normalizes every part (learning as it goes) and
// resolves them all at the end, so the same holds across its whole input.
import { NerveError } from '../runtime/errors.ts'
import {
  type CloudTrailRecord,
  type FalcoAlert,
  problemsOf,
  validateCloudTrailRecord,
  validateFalcoAlert,
} from '../schemas/input-validators.ts'
import type { Config, IdentityLink, NormalizedEvent, Via } from '../schemas/types.ts'
import type { ValidationProblem } from '../schemas/validators.ts'
import { itemKindOf, neitherKind } from './detect-item-kind.ts'
import { createWorkloadIssuer } from './eks-oidc-issuer.ts'
import { compileGlobs } from './match-glob.ts'
import { normalizeCloudTrailRecord } from './normalize-cloudtrail-record.ts'
import { normalizeFalcoAlert } from './normalize-falco-alert.ts'
import type { NormalizeContext, NormalizeResult, UnresolvedEvent } from './normalized-draft.ts'
import { type AgentResolver, type AgentSummary, createAgentResolver } from './resolve-agent-identity.ts'
import type { JsonItem } from './split-json-items.ts'
import {
  type Candidate,
  type SkipReason,
  type Unwrapped,
  unwrapCloudTrailItem,
} from './unwrap-cloudtrail-envelopes.ts'

/** What the items are: Falco alerts, CloudTrail in any envelope, or either, detected per item (replay). */
export type ItemKind = 'falco' | 'cloudtrail' | 'any'

export type DecodeContext = {
  /** Forces `via` (replay, firehose); otherwise detected per item. */
  via?: Via
  /** Wall-clock receipt time, epoch ms; replay passes a constant so output bytes do not depend on it. */
  receivedAt: number
  /** Most records after unwrapping envelopes (413 above it); unlimited when absent. */
  maxRecords?: number
  /**
   * Deepest nesting of a record parsed apart from its item (a CloudWatch Logs message, a JSON string):
   * the items' own depth is checked where they are split. Unlimited when absent.
   */
  maxDepth?: number
  /**
   * Wall-clock time items are judged against for `max_future_skew`, epoch ms; defaults to `receivedAt`.
   * Replay passes the time it started (its `receivedAt` is a constant); absent and `receivedAt` 0: no check.
   */
  now?: number
  /**
   * Keep each event's raw text (Decoded.rawTexts, for the bus to write as is): ingest's CloudTrail routes
   * set it; replay, which holds its drafts until it sorts them, does not.
   */
  rawTexts?: boolean
  /**
   * Whether the caller may post CloudTrail through the Falco door (alerts of Falco's cloudtrail plugin,
   * which become core events); asked once, at the first such alert. Absent: it may.
   */
  edgeCore?: () => boolean
}

/** One rejected record: its item index (and file, in replay), JSON path problems, and its original text. */
export type InvalidItem = {
  index: number
  problems: ValidationProblem[]
  original: string
  file?: string
  /** Set when the record was valid but dated more than `max_future_skew` ahead of its arrival. */
  reason?: 'future_time'
}

/** Kafka's own default for future timestamps (log.message.timestamp.after.max.ms): one hour. */
export const defaultMaxFutureSkew = 3_600_000

export type Decoded = {
  /** In input order. */
  events: NormalizedEvent[]
  invalid: InvalidItem[]
  skipped: Partial<Record<SkipReason, number>>
  /** How many of `events` are Falco internal messages (metrics snapshots, drops). */
  internal: number
  /**
   * With DecodeContext.rawTexts: `rawTexts[i]` is the text JSON.parse read to make `events[i].raw` (the
   * item's own text, its unsafe integers quoted), or undefined when the record was not parsed alone (an
   * element of a log file's Records, an EventBridge detail).
   */
  rawTexts?: (string | undefined)[]
  /** How many credential links the items taught (EventDecoderDeps.onLink was called for); absent: none. */
  links?: number
}

/** Normalized events not yet given their agent: what normalize() learned links from. */
export type Drafts = Omit<Decoded, 'events' | 'internal'> & { drafts: UnresolvedEvent[] }

export type EventDecoder = {
  /** normalize() then resolve(), in one call. */
  decode(kind: ItemKind, items: readonly JsonItem[], ctx: DecodeContext): Decoded
  /** Validates and normalizes the items and learns the credential links they issue. */
  normalize(kind: ItemKind, items: readonly JsonItem[], ctx: DecodeContext): Drafts
  /**
   * normalize(), stopping after every `step` records (a log file's thousands of records are one item), so
   * that a caller can give the event loop back between steps; its return value is normalize()'s.
   */
  normalizeInSteps(
    kind: ItemKind,
    items: readonly JsonItem[],
    ctx: DecodeContext,
    step: number,
  ): Generator<void, Drafts, undefined>
  /** Gives each draft its agent, with every link learned so far. */
  resolve(drafts: readonly UnresolvedEvent[]): Pick<Decoded, 'events' | 'internal'>
  /** Links learned elsewhere: the links file at start, other ingest instances; returns the new ones. */
  addLinks(links: readonly IdentityLink[]): IdentityLink[]
  links(): IdentityLink[]
  agents(): AgentSummary[]
}

export type EventDecoderDeps = {
  /** Called once per newly learned credential link (persist it). */
  onLink?(link: IdentityLink): void
  /** Called with the number of `workload`'s links forgotten to stay within the link table's bounds. */
  onLinksEvicted?(count: number, workload: string): void
  /** false: no per-agent summaries (agents() stays empty), for replay, which never reads them. */
  agentSummaries?: boolean
}

export function createEventDecoder(
  config: {
    agents: Config['agents']
    revoke: Pick<Config['revoke'], 'self_identities'>
    ingest?: Partial<
      Pick<
        Config['ingest'],
        'max_future_skew' | 'max_chained_links_per_workload' | 'max_issued_links_per_workload'
      >
    >
    clusters?: Config['clusters']
  },
  deps: EventDecoderDeps = {},
): EventDecoder {
  const resolver: AgentResolver = createAgentResolver(config.agents, {
    clusters: config.clusters,
    maxChainedLinksPerWorkload: config.ingest?.max_chained_links_per_workload,
    maxIssuedLinksPerWorkload: config.ingest?.max_issued_links_per_workload,
    onLinksEvicted: deps.onLinksEvicted,
    summaries: deps.agentSummaries,
  })
  const maxFutureSkew = config.ingest?.max_future_skew ?? defaultMaxFutureSkew
  const isSelfIdentity = selfIdentityMatcher(config.revoke.self_identities)
  const workloadIssuer = createWorkloadIssuer(config.clusters)

  /** Items → the records to validate (envelopes unwrapped) and the items rejected already, in input order. */
  const unwrap = (kind: ItemKind, items: readonly JsonItem[], ctx: DecodeContext): Unwrapping => {
    // Every candidate and every early rejection keeps its position in the input (`seq`), so events and
    // problems come out in input order across items, records and files.
    const candidates: Unwrapping['candidates'] = []
    const rejected: Unwrapping['rejected'] = []
    const skipped: SkipReason[] = []
    let seq = 0
    for (const item of items) {
      if (item.error !== undefined) {
        const problems = [{ path: '/', message: item.error }]
        rejected.push({
          seq: seq++,
          item: withFile({ index: item.index, problems, original: item.original() }, item),
        })
        continue
      }
      const as = kind === 'any' ? itemKindOf(item.value) : kind
      if (as === 'neither') {
        const problems = [{ path: '/', message: neitherKind }]
        rejected.push({
          seq: seq++,
          item: withFile({ index: item.index, problems, original: item.original() }, item),
        })
      } else if (as === 'falco') {
        const candidate: Candidate = {
          index: item.index,
          path: '',
          value: item.value,
          via: ctx.via ?? falcoVia(item.value),
          original: item.original,
          text: item.text,
        }
        candidates.push({ seq: seq++, falco: true, candidate, file: item.file })
      } else {
        const unwrapped: Unwrapped = { records: [], skipped, invalid: [] }
        unwrapCloudTrailItem(item, ctx.via, unwrapped, ctx.maxDepth)
        for (const i of unwrapped.invalid) {
          const problems = i.problems.map((p) => ({ path: joinPath(i.path, p.path), message: p.message }))
          rejected.push({
            seq: seq++,
            item: withFile({ index: i.index, problems, original: i.original() }, item),
          })
        }
        for (const candidate of unwrapped.records) {
          candidates.push({ seq: seq++, falco: false, candidate, file: item.file })
        }
      }
    }
    if (ctx.maxRecords !== undefined && seq > ctx.maxRecords) {
      throw new NerveError(
        'PAYLOAD_TOO_LARGE',
        `The body holds ${seq} records; at most ${ctx.maxRecords} are accepted per request.`,
      )
    }
    // An item dated far ahead would move stream time and make every later real event of its partition
    // late (and the checkpoint would keep it): it is refused here, before it reaches the bus.
    const now = ctx.now ?? ctx.receivedAt
    const latest = now > 0 ? now + maxFutureSkew : Number.POSITIVE_INFINITY
    const rawTexts = ctx.rawTexts ? [] : undefined
    return { candidates, rejected, skipped, drafts: [], rawTexts, now, latest }
  }

  /** Validates and normalizes candidates [from, to). */
  const normalizeRange = (u: Unwrapping, from: number, to: number, ctx: DecodeContext): void => {
    for (let i = from; i < to; i++) {
      const { seq: at, falco, candidate: c, file } = u.candidates[i] as Unwrapping['candidates'][number]
      const context: NormalizeContext = {
        via: c.via,
        receivedAt: ctx.receivedAt,
        isSelfIdentity,
        workloadIssuer,
      }
      const result = falco ? normalizeFalco(c.value, context) : normalizeCloudTrail(c.value, context)
      if (falco && result.ok && result.event.side === 'core' && !edgeCoreAllowed(u, ctx)) {
        const problems = [{ path: joinPath(c.path, '/source'), message: edgeCoreRefused }]
        u.rejected.push({
          seq: at,
          item: withFile({ index: c.index, problems, original: c.original() }, { file }),
        })
      } else if (result.ok && result.event.time > u.latest) {
        const path = joinPath(c.path, falco ? '/time' : '/eventTime')
        const ahead = Math.round((result.event.time - u.now) / 1000)
        const message = `is ${ahead} s ahead of its arrival; at most ${maxFutureSkew / 1000} s (ingest.max_future_skew) is accepted`
        u.rejected.push({
          seq: at,
          item: withFile(
            { index: c.index, problems: [{ path, message }], original: c.original(), reason: 'future_time' },
            { file },
          ),
        })
      } else if (result.ok) {
        u.drafts.push(result.event)
        u.rawTexts?.push(c.text)
      } else {
        const problems = result.problems.map((p) => ({ path: joinPath(c.path, p.path), message: p.message }))
        u.rejected.push({
          seq: at,
          item: withFile({ index: c.index, problems, original: c.original() }, { file }),
        })
      }
    }
  }

  /** Learns the links of the drafts; rejections in input order. */
  const finish = (u: Unwrapping): Drafts => {
    let links = 0
    for (const event of u.drafts) {
      const link = resolver.learn(event)
      if (link) {
        links++
        deps.onLink?.(link)
      }
    }
    u.rejected.sort((a, b) => a.seq - b.seq)
    const drafts: Drafts = {
      drafts: u.drafts,
      invalid: u.rejected.map((r) => r.item),
      skipped: countSkips(u.skipped),
    }
    if (u.rawTexts) drafts.rawTexts = u.rawTexts
    if (links > 0) drafts.links = links
    return drafts
  }

  const normalize = (kind: ItemKind, items: readonly JsonItem[], ctx: DecodeContext): Drafts => {
    const u = unwrap(kind, items, ctx)
    normalizeRange(u, 0, u.candidates.length, ctx)
    return finish(u)
  }

  function* normalizeInSteps(
    kind: ItemKind,
    items: readonly JsonItem[],
    ctx: DecodeContext,
    step: number,
  ): Generator<void, Drafts, undefined> {
    const u = unwrap(kind, items, ctx)
    for (let from = 0; from < u.candidates.length; from += step) {
      if (from > 0) yield
      normalizeRange(u, from, Math.min(from + step, u.candidates.length), ctx)
    }
    return finish(u)
  }

  const resolve = (drafts: readonly UnresolvedEvent[]) => {
    const events: NormalizedEvent[] = []
    let internal = 0
    for (const draft of drafts) {
      const event = resolver.resolve(draft)
      if (event.edge?.internal) internal++
      events.push(event)
    }
    return { events, internal }
  }

  const decode = (kind: ItemKind, items: readonly JsonItem[], ctx: DecodeContext): Decoded => {
    const { drafts, invalid, skipped, rawTexts, links } = normalize(kind, items, ctx)
    const decoded: Decoded = { ...resolve(drafts), invalid, skipped }
    if (rawTexts) decoded.rawTexts = rawTexts
    if (links) decoded.links = links
    return decoded
  }

  return {
    decode,
    normalize,
    normalizeInSteps,
    resolve,
    addLinks: resolver.addLinks,
    links: resolver.links,
    agents: resolver.agents,
  }
}

const edgeCoreRefused =
  'is aws_cloudtrail: an alert of the cloudtrail plugin is a CloudTrail record, and the token shown' +
  ' (ingest.tokens.falco, or a client certificate) may post Falco alerts only: post it with ingest.token'

function edgeCoreAllowed(u: Unwrapping, ctx: DecodeContext): boolean {
  if (ctx.edgeCore === undefined) return true
  u.edgeCore ??= ctx.edgeCore()
  return u.edgeCore
}

function normalizeFalco(value: unknown, ctx: NormalizeContext): NormalizeResult {
  if (!validateFalcoAlert(value)) return { ok: false, problems: problemsOf(validateFalcoAlert, value) }
  return normalizeFalcoAlert(value as FalcoAlert, ctx)
}

function normalizeCloudTrail(value: unknown, ctx: NormalizeContext): NormalizeResult {
  if (!validateCloudTrailRecord(value))
    return { ok: false, problems: problemsOf(validateCloudTrailRecord, value) }
  return normalizeCloudTrailRecord(value as CloudTrailRecord, ctx)
}

/** The records of some items, on their way to normalized events (see normalize()). */
type Unwrapping = {
  candidates: { seq: number; falco: boolean; candidate: Candidate; file?: string }[]
  rejected: { seq: number; item: InvalidItem }[]
  skipped: SkipReason[]
  drafts: UnresolvedEvent[]
  /** With DecodeContext.rawTexts: each draft's Candidate.text, aligned with `drafts`. */
  rawTexts: (string | undefined)[] | undefined
  /** DecodeContext.edgeCore's answer, once asked. */
  edgeCore?: boolean
  /** Arrival time items are judged against, and the latest event time accepted (max_future_skew). */
  now: number
  latest: number
}

function falcoVia(value: unknown): Via {
  return typeof value === 'object' && value !== null && 'uuid' in value
    ? 'falcosidekick'
    : 'falco_http_output'
}

/** A self identity written as a role ARN also covers that role's assumed-role sessions. */
function selfIdentityMatcher(identities: readonly string[]): (arn: string) => boolean {
  const matches = compileGlobs(identities)
  return (arn) => {
    const role = /^arn:([^:]+):sts::([^:]*):assumed-role\/([^/]+)\//.exec(arn)
    return matches(arn, role ? `arn:${role[1]}:iam::${role[2]}:role/${role[3]}` : undefined)
  }
}

function withFile(item: InvalidItem, from: { file?: string }): InvalidItem {
  return from.file === undefined ? item : { ...item, file: from.file }
}

function joinPath(prefix: string, path: string): string {
  if (path === '/' || path === '') return prefix || '/'
  return `${prefix}${path}`
}

function countSkips(reasons: SkipReason[]): Partial<Record<SkipReason, number>> {
  const counts: Partial<Record<SkipReason, number>> = {}
  for (const reason of reasons) counts[reason] = (counts[reason] ?? 0) + 1
  return counts
}
