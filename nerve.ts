// The `nerve` CLI and the only composition root: it reads the config once, opens the bus and wires the
// stages. Reading `run` top to bottom is reading the data flow: ingest → bus → correlate → bus → sinks.
// The replay command's wiring is in nerve-replay.ts: the same composition root, in two files.
import { parseArgs } from 'node:util'
import type { Bus } from './bus/bus.ts'
import type { EmbeddedBus } from './bus/embedded-bus.ts'
import type { KafkaBus } from './bus/kafka-bus.ts'
import { correlatorStateTopic } from './bus/topics.ts'
import type { CheckpointValue } from './correlate/key-value-checkpoint-store.ts'
import { replay, replayArgs } from './nerve-replay.ts'
import packageJson from './package.json' with { type: 'json' }
import { commandHelp, optionProblems, rulesHeader, stageHelp, usageText } from './runtime/cli-help.ts'
import { configReferenceMarkdown } from './runtime/config-reference.ts'
import { toConfigYaml } from './runtime/config-yaml.ts'
import { isNerveError, NerveError } from './runtime/errors.ts'
import type { ReadinessCheck, Route } from './runtime/http-routes.ts'
import { loadConfig, redactSecrets } from './runtime/load-config.ts'
import type { Logger } from './runtime/logger.ts'
import type { Metrics } from './runtime/metrics.ts'
import { announceStart } from './runtime/start-announcement.ts'
import { startupFailureLine } from './runtime/startup-failure.ts'
import { terminalJson, terminalText } from './runtime/terminal-text.ts'
import type { Config } from './schemas/types.ts'

// A command imports the modules it uses when it runs: `nerve replay`, `config` and `--help` never load
// Kafka, Elasticsearch, fastify or prom-client, and `nerve run` on the embedded bus never loads kafkajs.
// On this machine `nerve --help` went from 2.0 to 0.7 s, and a 20,000-event replay from 4.1 to 2.5 s of CPU.

type Command = {
  summary: string
  help: string
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>
  positionals?: boolean
  /** Reads the arguments before anything runs: what it throws is a usage error (exit 2, with the help). */
  args?(values: Record<string, unknown>, positionals: string[]): Promise<Record<string, unknown>>
  action(args: Record<string, unknown>, positionals: string[]): Promise<number>
}

const configOption = { config: { type: 'string', short: 'c' } } as const
const commands: Record<string, Command> = {
  run: {
    ...commandHelp.run,
    options: configOption,
    action: (values) => serve(['ingest', 'correlate', 'sinks'], values),
  },
  ingest: stageCommand('ingest', 'the receivers only: HTTP in, normalized events onto Kafka'),
  correlate: stageCommand('correlate', 'the correlator only: events from Kafka, correlations onto Kafka'),
  sink: stageCommand('sinks', 'the sinks only: embedded store, Elasticsearch, revoke webhooks, from Kafka'),
  replay: {
    ...commandHelp.replay,
    options: {
      ...configOption,
      order: { type: 'string' },
      out: { type: 'string', short: 'o' },
      'memory-budget': { type: 'string' },
      'spill-dir': { type: 'string' },
      threads: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      strict: { type: 'boolean' },
    },
    positionals: true,
    args: replayArgs,
    action: (args, files) => replay(args, files, readConfig),
  },
  setup: {
    ...commandHelp.setup,
    options: configOption,
    positionals: true,
    args: async (values, [target, ...more]) => {
      if (target === undefined)
        throw new NerveError('INPUT_INVALID', 'needs what to set up: "elasticsearch" or "kibana".')
      if ((target !== 'elasticsearch' && target !== 'kibana') || more.length > 0)
        throw new NerveError(
          'INPUT_INVALID',
          `takes "elasticsearch" or "kibana", not "${[target, ...more].join(' ')}".`,
        )
      return { ...values, target }
    },
    action: setup,
  },
  config: {
    ...commandHelp.config,
    options: { ...configOption, reference: { type: 'boolean' }, json: { type: 'boolean' } },
    action: async (values) => {
      if (values.reference) {
        process.stdout.write(configReferenceMarkdown())
        return 0
      }
      const shown = redactSecrets(await readConfig(values))
      if (values.json) process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`)
      else
        process.stdout.write(
          toConfigYaml(
            shown,
            'nerve: the effective configuration (defaults applied, secrets masked as ***).',
          ),
        )
      return 0
    },
  },
  rules: {
    ...commandHelp.rules,
    options: configOption,
    action: async (values) => {
      const path = (values.config as string | undefined) ?? process.env.NERVE_CONFIG
      const { rules } = (await import('./correlate/correlator-config.ts')).correlatorConfigOf(
        await readConfig(values),
      )
      process.stdout.write(
        toConfigYaml({ correlation: { rules } }, rulesHeader(packageJson.version, path, rules.length)),
      )
      return 0
    },
  },
  'dead-letters': {
    ...commandHelp['dead-letters'],
    options: {
      ...configOption,
      late: { type: 'boolean' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string', short: 'n' },
    },
    args: async (values) => {
      const { parseListQuery } = await import('./runtime/list-query.ts')
      const { since, until, limit } = values as Record<string, string | undefined>
      return { ...values, query: optionProblems(() => parseListQuery({ since, until, limit }, [])) }
    },
    action: printDeadLetters,
  },
}

const usage = usageText(Object.entries(commands).map(([name, c]) => [name, c.summary]))

export async function main(argv: string[]): Promise<number> {
  // On Node.js 20 the AWS SDK warns, once per thread that makes a client, that its releases after January
  // 2027 need Node.js 22: nine lines before nerve's first on every S3 replay and S3 + SQS run, about the
  // SDK's future and not this run. Its documented switch (aws/aws-sdk-js-v3#7983) turns it off, set here
  // before any client (or decoding thread, which copies this environment) exists; a value the operator
  // set is kept, so AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false shows it again.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const [name, ...rest] = argv
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`nerve ${packageJson.version}\n`)
    return 0
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process[name ? 'stdout' : 'stderr'].write(usage)
    return name ? 0 : 2
  }
  const command = commands[name]
  if (!command) {
    process.stderr.write(`nerve: unknown command "${name}"\n\n${usage}`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help)
    return 0
  }
  let args: Record<string, unknown>
  let positionals: string[]
  try {
    const parsed = parseArgs({
      args: rest,
      options: command.options,
      allowPositionals: command.positionals ?? false,
    })
    positionals = parsed.positionals
    args = command.args ? await command.args(parsed.values, positionals) : parsed.values
  } catch (err) {
    // A usage error (an unknown option, a missing or wrong argument): exit 2 with the command's help.
    if (!isNerveError(err) && !(err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw err
    const usage = `${command.help.split('\n\n')[0]}\nRun 'nerve ${name} --help' for every option.`
    process.stderr.write(`nerve ${name}: ${terminalText((err as Error).message)}\n\n${usage}\n`)
    return 2
  }
  try {
    return await command.action(args, positionals)
  } catch (err) {
    // A failure of the run (a bad config, a port in use, a file that is not there): one line, exit 1.
    const line = isNerveError(err) ? err.message : startupFailureLine(err)
    if (line === undefined) throw err
    process.stderr.write(`nerve ${name}: ${terminalText(line)}\n`)
    return 1
  }
}

/** The config as every command reads it: the file, NERVE_* overrides, then the correlation rules compiled. */
async function readConfig(values: Record<string, unknown>): Promise<Config> {
  const config = loadConfig({ file: values.config as string | undefined, env: process.env })
  const { correlatorConfigOf } = await import('./correlate/correlator-config.ts')
  correlatorConfigOf(config)
  return config
}

function stageCommand(stage: Stage, summary: string): Command {
  const name = stage === 'sinks' ? 'sink' : stage
  return {
    summary,
    help: stageHelp(name, stage),
    options: configOption,
    action: async (values) => {
      const config = await readConfig(values)
      if (config.kafka.brokers.length === 0) {
        throw new NerveError(
          'CONFIG_INVALID',
          `'nerve ${name}' runs one stage of a Kafka deployment and needs NERVE_KAFKA_BROKERS (or kafka.brokers); use 'nerve run' for one process.`,
        )
      }
      return serve([stage], values)
    },
  }
}

type Stage = 'ingest' | 'correlate' | 'sinks'
type Started = { routes?: Route[]; readiness: Record<string, ReadinessCheck>; close(): Promise<void> }

/** Opens the bus, starts the given stages behind one HTTP server, and runs until SIGINT/SIGTERM. */
async function serve(stages: Stage[], values: Record<string, unknown>): Promise<number> {
  const config = await readConfig(values)
  const { createLogger } = await import('./runtime/logger.ts')
  const { createMetrics } = await import('./runtime/metrics.ts')
  const { resolveIngestToken } = await import('./runtime/ingest-token.ts')
  const { createHttpServer } = await import('./runtime/http-server.ts')
  const log = createLogger(config.log)
  const metrics = createMetrics({ process: true })
  const now = Date.now
  const { makeDataDirPrivate } = await import('./runtime/private-data-dir.ts')
  makeDataDirPrivate(config.data_dir)
  const token = resolveIngestToken(config.ingest.token, config.data_dir)
  const { bus, kafka, embedded, busFile } = await openBus(config, { log, metrics })
  const http = createHttpServer(config.http, {
    log,
    metrics,
    ingestToken: token.token,
    tokens: config.ingest.tokens,
  })
  if (kafka) http.addReadinessCheck('kafka_bus', () => kafka.readiness())
  // A full disk or a failing one: every publish is refused (507/503) until a write succeeds again.
  if (embedded) http.addReadinessCheck('embedded_bus', () => embedded.readiness())
  const started: Started[] = []
  const deps = { bus, log, metrics, now }
  // Each part closes even when one before it failed: a stage's failure must not keep the bus open. False
  // when one failed: a stop that left something behind is no clean stop, and `nerve run` exits 1.
  const closeAll = async () => {
    const closes = [() => http.close(), ...started.reverse().map((s) => () => s.close()), () => bus.close()]
    let closed = true
    for (const close of closes) {
      await close().catch((err: unknown) => {
        closed = false
        log.warn({ err }, 'Closing a part failed; closing the rest.')
      })
    }
    return closed
  }
  let address: string
  try {
    address = await startStages(stages, config, { ...deps, kafka, busFile, http, started })
  } catch (err) {
    // A start-up failure closes what was opened (stages, server, bus) so the process can exit at once.
    await closeAll().catch((closing) => log.warn({ err: closing }, 'Closing after a failed start failed.'))
    throw err
  }
  if (stages.includes('sinks') || stages.includes('correlate')) await warnAtStart(config, log)
  announceStart(
    config,
    { address, stages, bus: config.kafka.brokers.length > 0 ? 'kafka' : 'embedded', token },
    log,
  )

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  log.info({ signal }, 'Shutting down: draining requests and batches in flight.')
  // A second signal ends the process without closing the stages. Nothing answered 202 is lost by it (a 202
  // is given once the events are durable, on the bus or in the Falco spool); the requests still under way
  // are answered 503 (Retry-After) first rather than dropped with their connection.
  const force = () => {
    log.warn({}, 'Second signal: refusing the requests under way and exiting without draining.')
    setTimeout(() => process.exit(130), 2_000).unref()
    void http.refuseInFlight().finally(() => process.exit(130))
  }
  process.once('SIGINT', force)
  process.once('SIGTERM', force)
  if (!(await closeAll())) {
    log.warn({}, 'Stopped, but a part failed to close (logged above).')
    return 1
  }
  log.info({}, 'Stopped.')
  return 0
}

/** Starts the stages in flow order behind the HTTP server and listens; `started` collects what to close. */
async function startStages(
  stages: Stage[],
  config: Config,
  deps: {
    bus: Bus
    kafka?: KafkaBus
    /** The embedded bus's file (the correlate thread and the store writer read their records from it). */
    busFile?: string
    http: ReturnType<typeof import('./runtime/http-server.ts').createHttpServer>
    started: Started[]
    log: Logger
    metrics: Metrics
    now: () => number
  },
): Promise<string> {
  const { kafka, busFile, http, started, now } = deps
  if (stages.includes('ingest')) {
    const { startIngest } = await import('./ingest/start-ingest.ts')
    const ingest = await startIngest(config, { ...deps, awsEnv: process.env })
    started.push(ingest)
    for (const topic of kafka ? config.kafka.cloudtrail_topics : []) {
      await kafka?.subscribeRaw(topic, config.kafka.cloudtrail_group, (batch) =>
        ingest.cloudTrailTopicReader.handle(topic, batch, now()),
      )
    }
  }
  if (stages.includes('correlate')) {
    const { startCorrelate, checkpointKey } = await import('./correlate/start-correlate.ts')
    const { createKeyValueCheckpointStore } = await import('./correlate/key-value-checkpoint-store.ts')
    // On Kafka, partitions move between correlate instances: checkpoints live in a compacted topic.
    const checkpoints = kafka
      ? createKeyValueCheckpointStore(
          await kafka.openKeyValueLog<CheckpointValue>(correlatorStateTopic),
          checkpointKey,
        )
      : undefined
    if (kafka) started.push(await startCorrelate(config, { ...deps, checkpoints }))
    else {
      // The embedded bus lives in this process: the correlator gets the second core on a thread of its own.
      const { startCorrelateThread } = await import('./correlate/correlate-thread.ts')
      started.push(await startCorrelateThread(config, { ...deps, busFile }))
    }
  }
  if (stages.includes('sinks')) {
    const { startSinks } = await import('./sinks/start-sinks.ts')
    started.push(await startSinks(config, deps))
  }
  for (const stage of started) {
    http.addRoutes(stage.routes ?? [])
    for (const [name, check] of Object.entries(stage.readiness)) http.addReadinessCheck(name, check)
  }
  return http.listen()
}

/** What an operator must hear before trusting the pipeline: revoke rules that can never reach anyone. */
async function warnAtStart(config: Config, log: Logger): Promise<void> {
  const { correlatorConfigOf } = await import('./correlate/correlator-config.ts')
  const { revokeTargetWarning } = await import('./sinks/revoke-target-check.ts')
  const warning = revokeTargetWarning(config.revoke, correlatorConfigOf(config).rules)
  if (warning) log.warn({ component: 'revoke_dispatcher', rules: warning.rules }, warning.message)
}

/** `nerve dead-letters`: the rejected store under the data dir, read-only, newest first, one JSON line each. */
async function printDeadLetters(args: Record<string, unknown>): Promise<number> {
  const config = await readConfig(args)
  const { openRejectedFile } = await import('./sinks/rejected-file.ts')
  const rejected = openRejectedFile(config.data_dir)
  try {
    const query = args.query as import('./runtime/list-query.ts').ListQuery
    const page = args.late ? rejected.reads.lateEvents(query) : rejected.reads.deadLetters(query)
    const lines = page.items.map((item) => `${terminalJson(item)}\n`).join('')
    await new Promise<void>((resolve) => process.stdout.write(lines, () => resolve()))
    const what = args.late ? 'late events' : 'dead letters'
    process.stderr.write(`${page.count} of ${page.total} ${what} (data: ${config.data_dir})\n`)
  } finally {
    rejected.close()
  }
  return 0
}

async function openBus(
  config: Config,
  deps: { log: Logger; metrics: Metrics },
): Promise<{ bus: Bus; kafka?: KafkaBus; embedded?: EmbeddedBus; busFile?: string }> {
  if (config.kafka.brokers.length > 0) {
    const { createKafkaBus } = await import('./bus/kafka-bus.ts')
    const kafka = await createKafkaBus(config.kafka, deps)
    return { bus: kafka, kafka }
  }
  const { createEmbeddedBus } = await import('./bus/embedded-bus.ts')
  const bus = createEmbeddedBus(
    {
      dataDir: config.data_dir,
      partitions: config.bus.partitions,
      retentionMs: config.bus.retention,
      maxBatch: config.bus.max_batch,
    },
    deps,
  )
  return { bus, embedded: bus, busFile: bus.file }
}

async function setup(args: Record<string, unknown>): Promise<number> {
  const config = await readConfig(args)
  const { createLogger } = await import('./runtime/logger.ts')
  const log = createLogger(config.log)
  if (args.target === 'elasticsearch') {
    if (!config.sinks.elasticsearch.url) {
      throw new NerveError(
        'CONFIG_INVALID',
        'Set NERVE_ELASTICSEARCH_URL (or sinks.elasticsearch.url) first.',
      )
    }
    const { setupElasticsearch } = await import('./sinks/elasticsearch-setup.ts')
    const { applied } = await setupElasticsearch(config.sinks.elasticsearch, { log })
    process.stderr.write(`Installed ${applied.length} objects: ${applied.join(', ')}\n`)
    return 0
  }
  const { setupKibana } = await import('./sinks/kibana-setup.ts')
  const { imported } = await setupKibana(config.sinks, { log })
  for (const { file, objects } of imported)
    process.stderr.write(`Imported ${objects} saved objects from ${file}\n`)
  return 0
}
