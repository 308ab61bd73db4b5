// Wires the receivers to the bus: one decoder (registry + learned links, persisted in the data dir and
// shared with the other ingest instances), one bounded publisher, the routes for the shared HTTP server,
// the reader for CloudTrail topics on Kafka, and a readiness check.
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Bus } from '../bus/bus.ts'
import { closeInTurn } from '../runtime/close-in-turn.ts'
import { optionalCheck, type ReadinessCheck, type Route } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Config, IdentityLink } from '../schemas/types.ts'
import { defaultAgentBudget } from './agent-budget.ts'
import { createAgentVolume, defaultAgentVolume } from './agent-volume.ts'
import { createAgentsRoute } from './agents-route.ts'
import { createCloudTrailReceiver } from './cloudtrail-receiver.ts'
import { type CloudTrailTopicReader, createCloudTrailTopicReader } from './cloudtrail-topic-reader.ts'
import { createEventDecoder } from './decode-events.ts'
import { partialIssuerWarning } from './eks-oidc-issuer.ts'
import { createFalcoReceiver } from './falco-receiver.ts'
import { createFalcoSpool, hasSpooledRequests } from './falco-spool.ts'
import { createFirehoseReceiver } from './firehose-receiver.ts'
import { createFoldOverBudget, type FoldOverBudget } from './fold-over-budget.ts'
import { createIdentityLinksFile } from './identity-links-file.ts'
import { createEvictionWarnings } from './link-eviction-warnings.ts'
import { createDecodedPublisher } from './publish-decoded.ts'
import { registryWarnings } from './resolve-agent-identity.ts'
import { type AwsClients, createAwsClients } from './s3-client.ts'
import { type S3SqsReader, startS3SqsReader } from './s3-sqs-reader.ts'
import { type IdentityLinkSharing, startIdentityLinkSharing } from './share-identity-links.ts'

export type IngestDeps = {
  bus: Bus
  log: Logger
  metrics: Metrics
  now: () => number
  /** Names this instance's consumer group for shared identity links; default: the host name. */
  instance?: string
  /** The environment the AWS SDK's endpoint variables are read from (nerve.ts passes process.env). */
  awsEnv?: Readonly<Record<string, string | undefined>>
  /** AWS clients for ingest.s3_sqs; built from the SDK's default chain when absent. */
  aws?: AwsClients
}

export type Ingest = {
  routes: Route[]
  readiness: Record<string, ReadinessCheck>
  /** For kafka.cloudtrail_topics: the caller subscribes the raw topics and hands their batches here. */
  cloudTrailTopicReader: CloudTrailTopicReader
  /** Waits for publishes in flight; the caller closes the HTTP server first and the bus after. */
  close(): Promise<void>
}

export async function startIngest(config: Config, deps: IngestDeps): Promise<Ingest> {
  const log = deps.log.child({ component: 'ingest' })
  const linksFile = createIdentityLinksFile(config.data_dir, { log, now: deps.now })
  const learned = deps.metrics.counter(
    'nerve_ingest_identity_links_learned_total',
    'Credential links learned.',
  )
  const evicted = deps.metrics.counter(
    'nerve_ingest_identity_links_evicted_total',
    "Credential links forgotten to stay within the link table or one workload's chained-link cap.",
  )
  const evictionWarnings = createEvictionWarnings({ log, now: deps.now })
  let sharing: IdentityLinkSharing | undefined
  const persist = (link: IdentityLink) => {
    try {
      linksFile.append(link, () => decoder.links())
    } catch (err) {
      log.error({ err, path: linksFile.path }, 'Could not persist a learned identity link.')
    }
  }
  const decoder = createEventDecoder(config, {
    onLinksEvicted: (count, workload) => {
      evicted.inc(count)
      evictionWarnings.warn(workload, count)
    },
    onLink: (link) => {
      learned.inc()
      sharing?.share(link)
      persist(link)
    },
  })
  const links = linksFile.load()
  decoder.addLinks(links)
  sharing = await startIdentityLinkSharing({
    bus: deps.bus,
    log,
    group: `nerve-ingest-links-${deps.instance ?? hostname()}`,
    // Kept in the links file too: this instance's links group resumes after them once it restarts.
    // On disk before the links group commits past them.
    onLinks: async (shared) => {
      const added = decoder.addLinks(shared)
      for (const link of added) persist(link)
      if (added.length > 0) await linksFile.durable()
    },
  })
  for (const warning of registryWarnings(config.agents))
    log.warn({ error_code: 'CONFIG_INVALID' }, `Registry entry can never match a Falco alert: ${warning}.`)
  const issuers = partialIssuerWarning(config.clusters)
  if (issuers !== undefined) log.warn({ error_code: 'CONFIG_INVALID' }, issuers)
  log.info({ links: decoder.links().length, agents: config.agents.length }, 'Ingest started.')
  const volume = createAgentVolume(defaultAgentVolume, { now: deps.now, log, metrics: deps.metrics })
  const publisher = createDecodedPublisher(
    { maxPending: config.ingest.max_pending_publishes },
    {
      bus: deps.bus,
      metrics: deps.metrics,
      onPublished: volume.note,
      linksDurable: linksFile.durable,
      linksOwed: linksFile.owed,
    },
  )
  const receiverDeps = { decoder, publisher, log: deps.log, metrics: deps.metrics }
  const spoolDir = join(config.data_dir, 'falco-spool')
  const spoolDeps = { publisher, log: deps.log, metrics: deps.metrics }
  const spool =
    config.ingest.falco_spool_bytes > 0
      ? createFalcoSpool(
          {
            dir: spoolDir,
            maxBytes: config.ingest.falco_spool_bytes,
            patienceMs: config.ingest.falco_spool_after,
          },
          spoolDeps,
        )
      : undefined
  const perMinute = config.ingest.agent_budget.alerts_per_rule_per_minute
  const budget: FoldOverBudget | undefined =
    perMinute > 0
      ? createFoldOverBudget(
          { ...defaultAgentBudget, perMinute },
          { publisher, log: deps.log, metrics: deps.metrics, now: deps.now },
        )
      : undefined
  // Requests a previous run spooled were answered 202: switching the spool off must not strand them. A
  // drain-only spool (budget 0) publishes them and takes no new ones; the receiver never sees it.
  const leftover =
    spool === undefined && hasSpooledRequests(spoolDir)
      ? createFalcoSpool({ dir: spoolDir, maxBytes: 0, patienceMs: 0 }, spoolDeps)
      : undefined
  let s3Sqs: S3SqsReader | undefined
  let aws: AwsClients | undefined
  if (config.ingest.s3_sqs.queues.length > 0) {
    aws = deps.aws ?? createAwsClients({ env: deps.awsEnv ?? {} })
    s3Sqs = startS3SqsReader(config.ingest.s3_sqs, config.http, {
      ...receiverDeps,
      sqsFor: aws.sqsFor,
      s3: aws.s3,
      bus: deps.bus,
      now: deps.now,
    })
  }
  return {
    routes: [
      createFalcoReceiver(config.http, {
        ...receiverDeps,
        ...(spool ? { spool } : {}),
        ...(budget ? { budget } : {}),
      }),
      createCloudTrailReceiver(config.http, receiverDeps),
      createFirehoseReceiver(config.http, { ...receiverDeps, now: deps.now }),
      createAgentsRoute(decoder.agents),
    ],
    readiness: {
      ingest: () => {
        const pending = publisher.pending()
        if (pending < config.ingest.max_pending_publishes) return { ok: true }
        const detail = `${pending} publishes waiting for the bus`
        // With the spool on, a busy bus must not take nerve out of a load balancer: Falco's senders would
        // then lose alerts that the spool would have kept. falco_spool says when it is full.
        return spool ? { ok: true, detail: `${detail}; Falco requests are spooled` } : { ok: false, detail }
      },
      // A queue that cannot be received from keeps its messages, and the HTTP routes still accept: degraded.
      ...(s3Sqs ? { s3_sqs: optionalCheck(s3Sqs.readiness) } : {}),
      ...(spool ? { falco_spool: spool.readiness } : {}),
      ...(leftover ? { falco_spool: leftover.readiness } : {}),
    },
    cloudTrailTopicReader: createCloudTrailTopicReader(config.http, { ...receiverDeps, bus: deps.bus }),
    // Each part closes even when one before it failed (its threads and files, its AWS client).
    close: () =>
      closeInTurn([
        () => s3Sqs?.close(),
        () => spool?.close(),
        () => leftover?.close(),
        () => aws && aws !== deps.aws && aws.close(),
        () => budget?.close(),
        () => publisher.drain(),
        () => sharing?.close(),
        // A compaction of the links file running in the background finishes (its rename and fsyncs).
        () => linksFile.settled(),
      ]),
  }
}
