// Correlator pure core: events/s on one core over a realistic mix, and heap bytes per buffered event.
// Mix: 10,000 agents; 20% Falco alerts (real rule names and priorities), 80% CloudTrail, of which only the
// 1% "hot" agents issue actions the built-in rules use (so most CloudTrail is filtered out) and their
// windows overlap with their alerts. Event time advances 5 ms per event; CloudTrail arrives up to 5 min
// late, Falco up to 2 s. Targets: ≥ 1,000,000 events/s, ≤ 400 bytes per buffered event.
// Baseline: the textbook join (bareJoin below) on the same events, chunks alternating between the two.
import { createHash } from 'node:crypto'
import { getHeapSpaceStatistics } from 'node:v8'
import { builtinRules } from '../correlate/builtin-rules.ts'
import { createCorrelator } from '../correlate/correlator.ts'
import type { CorrelatorConfig } from '../correlate/correlator-types.ts'
import { compileRules, createRuleMatcher } from '../correlate/match-rules.ts'
import type { CoreFields, EdgeFields, FalcoPriority, NormalizedEvent } from '../schemas/types.ts'
import { seededRandom, uuidFrom } from '../tests/helpers/seeded-random.ts'

const agents = 10_000
const hotAgents = 100
const T0 = Date.UTC(2026, 10, 25, 12)

const config: CorrelatorConfig = {
  rules: builtinRules,
  window: { before: 120_000, after: 900_000, grace: 1_200_000 },
  max_events_per_agent: 1000,
  memory_budget_bytes: 2 * 1024 ** 3,
  incident_gap: 1_800_000,
  self_identities: ['arn:aws:iam::123456789012:role/nerve-revoker'],
  // As nerve runs it: the behavioural baseline on, with its default settings and share of the budget.
  baseline: {
    enabled: true,
    history: 7 * 86_400_000,
    warmup: 3_600_000,
    routine_min: 20,
    burst_window: 600_000,
    burst_min: 5,
    memory_bytes: Math.floor(0.1 * 2 * 1024 ** 3),
  },
}

const falcoRules: [string, FalcoPriority, string[]][] = [
  [
    'Terminal shell in container',
    'notice',
    ['maturity_stable', 'container', 'shell', 'mitre_execution', 'T1059'],
  ],
  ['Contact K8S API Server From Container', 'notice', ['maturity_stable', 'container', 'network', 'k8s']],
  ['Read sensitive file untrusted', 'warning', ['maturity_stable', 'host', 'container', 'filesystem']],
  ['Find AWS Credentials', 'warning', ['maturity_stable', 'host', 'container', 'process', 'aws']],
  ['Unexpected outbound connection destination', 'notice', ['host', 'container', 'network']],
  ['Launch Suspicious Network Tool in Container', 'notice', ['container', 'network', 'process']],
  ['Disallowed K8s User', 'warning', ['k8s']],
  ['Drop and execute new binary in container', 'critical', ['maturity_stable', 'container', 'process']],
]
const noiseActions = [
  's3:GetObject',
  'ec2:DescribeInstances',
  'sts:GetCallerIdentity',
  'kms:Decrypt',
  'logs:PutLogEvents',
  'dynamodb:GetItem',
  'ssm:DescribeInstanceInformation',
]
const riskyActions = [
  'iam:AttachRolePolicy',
  'iam:PutRolePolicy',
  'secretsmanager:GetSecretValue',
  'iam:CreateAccessKey',
  'cloudtrail:StopLogging',
]

/** Seeded, so every run measures the same input. */
let random = seededRandom(42)
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T

export function makeEvent(n: number): NormalizedEvent {
  const now = T0 + n * 5
  const hot = random() < 0.01
  const a = hot ? Math.floor(random() * hotAgents) : hotAgents + Math.floor(random() * (agents - hotAgents))
  const agent = { id: `agent-${a}`, resolved_by: 'registry' as const }
  if (random() < 0.2) {
    const [rule, priority, tags] = pick(falcoRules)
    const time = now - Math.floor(random() * 2000)
    const pod = `worker-${a}-7f9c`
    return {
      // As ingest names an alert: 32 hex digits of a SHA-256 content hash.
      id: createHash('sha256').update(`edge${n}`).digest('hex').slice(0, 32),
      side: 'edge',
      time,
      time_ns: 0,
      time_original: new Date(time).toISOString(),
      received_at: now,
      via: 'falcosidekick',
      agent,
      identity: { k8s_namespace: 'agents', k8s_pod: pod, container_id: '5892b41bcf46' },
      edge: {
        rule,
        priority,
        source: 'syscall',
        hostname: `ip-10-0-${a % 250}-23.ec2.internal`,
        tags,
        output: `${new Date(time).toISOString().slice(11, 23)}000000: Notice A shell was spawned in a container with an attached terminal (user=root user_loginuid=-1 k8s.ns=agents k8s.pod=${pod} container=5892b41bcf46 shell=sh parent=runc cmdline=sh terminal=34817)`,
        output_fields: { 'container.id': '5892b41bcf46', 'k8s.ns.name': 'agents', 'k8s.pod.name': pod },
        internal: false,
      },
      raw: null,
    }
  }
  const action = hot && random() < 0.3 ? pick(riskyActions) : pick(noiseActions)
  const time = now - Math.floor(random() * 300_000)
  const role = `arn:aws:iam::123456789012:role/agent-${a}`
  return {
    id: uuidFrom(String(n)),
    side: 'core',
    time,
    time_ns: 0,
    time_original: new Date(time).toISOString(),
    received_at: now,
    via: 'cloudtrail_log_file',
    agent,
    identity: { role_arn: role, account_id: '123456789012' },
    core: {
      action,
      event_source: `${action.split(':')[0]}.amazonaws.com`,
      event_name: action.split(':')[1] as string,
      event_type: 'AwsApiCall',
      read_only: noiseActions.includes(action),
      principal_arn: `arn:aws:sts::123456789012:assumed-role/agent-${a}/botocore-session-1`,
      session_issuer_arn: role,
      region: 'us-east-1',
      account_id: '123456789012',
      source_ip: '10.0.1.23',
      resources: [],
      by_nerve: false,
    },
    raw: null,
  }
}

const gc = () => (globalThis as { gc?: () => void }).gc?.()
/**
 * The JS heap plus ArrayBuffer backing stores (typed arrays live outside heapUsed), less compiled code:
 * V8 optimizing the correlator while the events go in is not memory per buffered event (seen: 0.35 MiB of
 * code space, 4.5 bytes per event, when this part runs alone).
 */
const heapBytes = () => {
  const m = process.memoryUsage()
  const code = getHeapSpaceStatistics()
    .filter((space) => space.space_name.startsWith('code_'))
    .reduce((sum, space) => sum + space.space_used_size, 0)
  return m.heapUsed - code + m.arrayBuffers
}

/**
 * heapBytes once collection has settled: V8 frees old ArrayBuffer backing stores on a background thread
 * after the collection, so a reading right after gc() can still count the previous phase's buffers (seen:
 * 30 MiB one run, 28 MiB the next, for the same events).
 */
async function settledHeapBytes(): Promise<number> {
  let last = -1
  for (let i = 0; i < 20; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const now = heapBytes()
    if (now === last) return now
    last = now
  }
  return last
}

/** Small batches, as the bus hands them over: events are processed while their memory is still cached. */
const chunk = 200

/**
 * The chunk from `start` as published: the correlate stage gets JSON.parse of it, fresh strings and all
 * (the generator's template strings and shared constants would be cheaper to hash, compare and keep).
 */
const published = (start: number): string =>
  JSON.stringify(Array.from({ length: chunk }, (_, i) => makeEvent(start + i)))

/**
 * The textbook join, as the baseline: a Map of per-agent arrays of whole events, a Set of seen ids and a
 * FIFO for retention, with the same rule filter. No memory bounds, no interning, no late-event or
 * per-rule window logic, no records: matching pairs are only counted. What a first version would do.
 */
function bareJoin(): { accept(event: NormalizedEvent): void; pairs(): number } {
  const matcher = createRuleMatcher(compileRules(config.rules, config.window))
  const { before, after, grace } = config.window
  const byAgent = new Map<string, { edges: NormalizedEvent[]; cores: NormalizedEvent[] }>()
  const seen = new Set<string>()
  const arrivals: NormalizedEvent[] = []
  let oldest = 0
  let pairs = 0
  const accept = (e: NormalizedEvent) => {
    const edge = e.side === 'edge'
    const mask = edge ? matcher.edgeMask(e.edge as EdgeFields) : matcher.coreMask(e.core as CoreFields)
    if (mask === 0 || seen.has(e.id)) return
    seen.add(e.id)
    let w = byAgent.get(e.agent.id)
    if (!w) {
      w = { edges: [], cores: [] }
      byAgent.set(e.agent.id, w)
    }
    for (const o of edge ? w.cores : w.edges) {
      const delta = edge ? o.time - e.time : e.time - o.time
      if (delta >= -before && delta <= after) pairs++
    }
    ;(edge ? w.edges : w.cores).push(e)
    arrivals.push(e)
    for (let x = arrivals[oldest]; x && x.time + after + grace < e.time; x = arrivals[++oldest]) {
      seen.delete(x.id)
      const xw = byAgent.get(x.agent.id) as { edges: NormalizedEvent[]; cores: NormalizedEvent[] }
      const list = x.side === 'edge' ? xw.edges : xw.cores
      list.splice(list.indexOf(x), 1)
      if (xw.edges.length + xw.cores.length === 0) byAgent.delete(x.agent.id)
    }
    if (oldest > 100_000) {
      arrivals.splice(0, oldest)
      oldest = 0
    }
  }
  return { accept, pairs: () => pairs }
}

/** CPU microseconds of this process (all threads: GC helpers included) while `work` runs. */
function cpuMicros(work: () => void): number {
  const start = process.cpuUsage()
  work()
  const used = process.cpuUsage(start)
  return used.user + used.system
}

function throughput(total: number): void {
  const correlator = createCorrelator(config)
  const bare = bareJoin()
  let cpu = 0
  let bareCpu = 0
  let correlations = 0
  for (let start = 0; start < total; start += chunk) {
    // Each gets the events as the bus hands them over: JSON.parse of the published record.
    const record = published(start)
    const events = JSON.parse(record) as NormalizedEvent[]
    const copies = JSON.parse(record) as NormalizedEvent[]
    const ours = () => {
      cpu += cpuMicros(() => {
        for (const e of events) correlations += correlator.accept(e).correlations.length
      })
    }
    const theirs = () => {
      bareCpu += cpuMicros(() => {
        for (const e of copies) bare.accept(e)
      })
    }
    // Alternating who goes first exposes both alike to the machine's drift and to each other's garbage.
    if ((start / chunk) % 2 === 0) {
      ours()
      theirs()
    } else {
      theirs()
      ours()
    }
  }
  const s = correlator.stats()
  const rate = total / (cpu / 1e6)
  const bareRate = total / (bareCpu / 1e6)
  const fmt = (n: number) => Math.round(n).toLocaleString('en')
  process.stdout.write(
    `events: ${fmt(total)}  correlations: ${correlations}  buffered: ${s.buffered}  agents: ${s.agents}  ignored no_rule: ${s.ignored.no_rule}\n` +
      `throughput: ${fmt(rate)} events per CPU-second (target 1,000,000: ratio ${(rate / 1e6).toFixed(2)}); ` +
      `bare join ${fmt(bareRate)} (${bare.pairs()} pairs counted): ratio ${(rate / bareRate).toFixed(2)}\n`,
  )
}

async function bytesPerBufferedEvent(count: number): Promise<void> {
  if (!(globalThis as { gc?: unknown }).gc) {
    process.stdout.write('bytes per buffered event: skipped (run with node --expose-gc)\n')
    return
  }
  random = seededRandom(7)
  const memory = createCorrelator(config)
  const before = await settledHeapBytes()
  for (let start = 0; start < count; start += chunk) {
    for (const e of JSON.parse(published(start)) as NormalizedEvent[]) memory.accept(e)
  }
  const after = await settledHeapBytes()
  const m = memory.stats()
  const perEvent = (after - before) / m.buffered
  const outputs = memory
    .snapshot()
    .entries.reduce((sum, e) => sum + (e.output === undefined ? 0 : 16 + e.output.length), 0)
  const withoutOutput = (after - before - outputs) / m.buffered
  process.stdout.write(
    `memory: ${m.buffered.toLocaleString('en')} buffered events, heap +${((after - before) / 1024 ** 2).toFixed(1)} MiB, ` +
      `${Math.round(perEvent)} bytes per buffered event (target ≤ 400: ratio ${(perEvent / 400).toFixed(2)}); ` +
      `${Math.round(withoutOutput)} without the Falco output text it must keep; the budget estimate says ${Math.round(m.buffered_bytes / m.buffered)}; ` +
      `baseline: ${m.baseline.agents.toLocaleString('en')} agents, ${(m.baseline.bytes / 1024).toFixed(0)} KiB estimated (in the heap figure)\n`,
  )
}

/**
 * One noisy agent (every call a secret read a rule uses): CPU per event while its buffer is under the
 * per-agent cap, and once it is at the cap and each new event sheds the one that would expire first.
 */
function noisyAgent(): void {
  const noisy = (n: number): NormalizedEvent => {
    let e = makeEvent(n)
    while (e.side !== 'core') e = makeEvent(n)
    return {
      ...e,
      agent: { id: 'agent-noisy', resolved_by: 'registry' },
      core: { ...(e.core as CoreFields), action: 'secretsmanager:GetSecretValue', read_only: true },
    }
  }
  const measured = 20_000
  // Run twice, the first time as warm-up: the shed path is otherwise cold when the first cap is measured.
  const measure = () =>
    [1_000, 50_000].map((cap) => {
      const correlator = createCorrelator({ ...config, max_events_per_agent: cap })
      for (let n = 0; n < cap; n++) correlator.accept(noisy(n))
      const events = Array.from({ length: measured }, (_, i) => noisy(cap + i))
      const micros = cpuMicros(() => {
        for (const e of events) correlator.accept(e)
      })
      const under = createCorrelator({ ...config, max_events_per_agent: cap + measured })
      for (let n = 0; n < cap; n++) under.accept(noisy(n))
      const underMicros = cpuMicros(() => {
        for (const e of events) under.accept(e)
      })
      return `cap ${cap.toLocaleString('en')}: ${(micros / measured).toFixed(1)} µs per event at the cap, ${(underMicros / measured).toFixed(1)} under it`
    })
  measure()
  const line = measure()
  process.stdout.write(`noisy agent: ${line.join('; ')}\n`)
}

export default async function run(): Promise<void> {
  const [load] = (await import('node:os')).loadavg()
  process.stdout.write(
    `load average ${load?.toFixed(1)} (figures scale with the CPU share this process gets)\n`,
  )
  throughput(1_000_000)
  noisyAgent()
  await bytesPerBufferedEvent(400_000)
}
