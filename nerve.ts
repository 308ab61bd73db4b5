// The `nerve` CLI and the only composition root: it reads the config once and wires the stages.
import { parseArgs } from 'node:util'
import { isNerveError } from './runtime/errors.ts'
import { createHttpServer } from './runtime/http-server.ts'
import { resolveIngestToken } from './runtime/ingest-token.ts'
import { loadConfig } from './runtime/load-config.ts'
import { createLogger } from './runtime/logger.ts'
import { createMetrics } from './runtime/metrics.ts'

const usage = `nerve: joins Falco runtime alerts (edge) to CloudTrail IAM actions (core) by agent and time window.

Usage: nerve <command> [options]

Commands:
  run          every stage in one process (embedded bus unless NERVE_KAFKA_BROKERS is set)

Options:
  -c, --config FILE   YAML config (or NERVE_CONFIG); every key has a default
  -h, --help          this help; 'nerve <command> --help' for one command
`

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage)
    return command ? 0 : 2
  }
  try {
    if (command === 'run') return await run(rest)
    process.stderr.write(`nerve: unknown command "${command}"\n\n${usage}`)
    return 2
  } catch (err) {
    if (isNerveError(err)) {
      process.stderr.write(`nerve: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } })
  const config = loadConfig({ file: values.config, env: process.env })
  const log = createLogger(config.log)
  const metrics = createMetrics()
  const token = resolveIngestToken(config.ingest.token, config.data_dir)
  const http = createHttpServer(config.http, { log, metrics, ingestToken: token.token })
  const address = await http.listen()
  log.info({ address, data_dir: config.data_dir }, 'Listening.')
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await http.close()
  return 0
}
