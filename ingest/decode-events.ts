// Raw JSON items → normalized, identified events: the one path shared by the HTTP receivers and
// `nerve replay`. No bus, no HTTP, no clock. Within one call, credential links are learned from every
// issuing event first and applied second, so an issuing record that comes after its first use in the
// same request, file or replay input still names the workload.
import { NerveError } from '../runtime/errors.ts'
import {
  type CloudTrailRecord,
  type FalcoAlert,
  problemsOf,
  validateCloudTrailRecord,
  validateFalcoAlert,
} from '../schemas/input-validators.ts'
import type { Config, NormalizedEvent, Via } from '../schemas/types.ts'
import type { ValidationProblem } from '../schemas/validators.ts'
import { compileGlobs } from './match-glob.ts'
import { normalizeCloudTrailRecord } from './normalize-cloudtrail-record.ts'
import { normalizeFalcoAlert } from './normalize-falco-alert.ts'
import type { NormalizeContext, NormalizeResult, UnresolvedEvent } from './normalized-draft.ts'
import {
  type AgentResolver,
  type AgentSummary,
  createAgentResolver,
  type IdentityLink,
} from './resolve-agent-identity.ts'
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
}

/** One rejected record: its item index, JSON path problems, and its original text. */
export type InvalidItem = { index: number; problems: ValidationProblem[]; original: string }

export type Decoded = {
  /** In input order. */
  events: NormalizedEvent[]
  invalid: InvalidItem[]
  skipped: Partial<Record<SkipReason, number>>
  /** How many of `events` are Falco internal messages (metrics snapshots, drops). */
  internal: number
}

export type EventDecoder = {
  decode(kind: ItemKind, items: readonly JsonItem[], ctx: DecodeContext): Decoded
  /** Links learned elsewhere: the links file at start, other ingest instances. */
  addLinks(links: readonly IdentityLink[]): void
  links(): IdentityLink[]
  agents(): AgentSummary[]
}

export type EventDecoderDeps = {
  /** Called once per newly learned credential link (persist it). */
  onLink?(link: IdentityLink): void
}

export function createEventDecoder(
  config: { agents: Config['agents']; revoke: Pick<Config['revoke'], 'self_identities'> },
  deps: EventDecoderDeps = {},
): EventDecoder {
  const resolver: AgentResolver = createAgentResolver(config.agents)
  const isSelfIdentity = selfIdentityMatcher(config.revoke.self_identities)

  const decode = (kind: ItemKind, items: readonly JsonItem[], ctx: DecodeContext): Decoded => {
    const unwrapped: Unwrapped = { records: [], skipped: [], invalid: [] }
    const falco: Candidate[] = []
    for (const item of items) {
      if (item.error !== undefined) {
        const problem = { path: '/', message: item.error }
        unwrapped.invalid.push({ index: item.index, path: '', problems: [problem], original: item.original })
      } else if (kind === 'falco' || (kind === 'any' && looksLikeFalco(item.value))) {
        falco.push({ ...item, path: '', via: ctx.via ?? falcoVia(item.value) })
      } else {
        unwrapCloudTrailItem(item, ctx.via, unwrapped)
      }
    }
    const total = falco.length + unwrapped.records.length + unwrapped.invalid.length
    if (ctx.maxRecords !== undefined && total > ctx.maxRecords) {
      throw new NerveError(
        'PAYLOAD_TOO_LARGE',
        `The body holds ${total} records; at most ${ctx.maxRecords} are accepted per request.`,
      )
    }
    const invalid: InvalidItem[] = unwrapped.invalid.map((i) => ({
      index: i.index,
      problems: i.problems.map((p) => ({ path: joinPath(i.path, p.path), message: p.message })),
      original: i.original(),
    }))
    const drafts: { at: number; event: UnresolvedEvent }[] = []
    const normalizeAll = (candidates: Candidate[], normalize: (c: Candidate) => NormalizeResult) => {
      for (const candidate of candidates) {
        const result = normalize(candidate)
        if (result.ok) drafts.push({ at: candidate.index, event: result.event })
        else
          invalid.push({
            index: candidate.index,
            problems: result.problems.map((p) => ({
              path: joinPath(candidate.path, p.path),
              message: p.message,
            })),
            original: candidate.original(),
          })
      }
    }
    const context = (c: Candidate): NormalizeContext => ({
      via: c.via,
      receivedAt: ctx.receivedAt,
      isSelfIdentity,
    })
    normalizeAll(falco, (c) =>
      validateFalcoAlert(c.value)
        ? normalizeFalcoAlert(c.value as FalcoAlert, context(c))
        : { ok: false, problems: problemsOf(validateFalcoAlert, c.value) },
    )
    normalizeAll(unwrapped.records, (c) =>
      validateCloudTrailRecord(c.value)
        ? normalizeCloudTrailRecord(c.value as CloudTrailRecord, context(c))
        : { ok: false, problems: problemsOf(validateCloudTrailRecord, c.value) },
    )
    if (kind === 'any') drafts.sort((a, b) => a.at - b.at)
    for (const { event } of drafts) {
      const link = resolver.learn(event)
      if (link) deps.onLink?.(link)
    }
    const events = drafts.map(({ event }) => resolver.resolve(event))
    invalid.sort((a, b) => a.index - b.index)
    return {
      events,
      invalid,
      skipped: countSkips(unwrapped.skipped),
      internal: events.filter((e) => e.edge?.internal).length,
    }
  }

  return {
    decode,
    addLinks: resolver.addLinks,
    links: resolver.links,
    agents: resolver.agents,
  }
}

/** Falco alerts have a priority and a rule (or its capitalised Go-decoder variant); CloudTrail never does. */
function looksLikeFalco(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && 'priority' in value && ('rule' in value || 'Rule' in value)
  )
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

function joinPath(prefix: string, path: string): string {
  if (path === '/' || path === '') return prefix || '/'
  return `${prefix}${path}`
}

function countSkips(reasons: SkipReason[]): Partial<Record<SkipReason, number>> {
  const counts: Partial<Record<SkipReason, number>> = {}
  for (const reason of reasons) counts[reason] = (counts[reason] ?? 0) + 1
  return counts
}
