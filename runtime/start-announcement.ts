// What `nerve run` (or one stage) says once it listens: a log line, and for the operator on stderr where
// it listens, where its data lives, the ingest token (printed once, when it was generated) and its routes.
import type { Config } from '../schemas/types.ts'
import type { resolveIngestToken } from './ingest-token.ts'
import type { Logger } from './logger.ts'

/** Says where nerve listens and what it serves. */
export function announceStart(
  config: Config,
  what: {
    address: string
    stages: readonly string[]
    bus: string
    token: ReturnType<typeof resolveIngestToken>
  },
  log: Logger,
): void {
  const address = listened(config.http.host, what.address)
  log.info({ address, data_dir: config.data_dir, bus: what.bus, stages: what.stages }, 'nerve is running.')
  const where = address === what.address ? address : `${address}, every interface`
  const lines = [
    `nerve ${what.stages.join(' + ')} listening on ${where} (bus: ${what.bus}, data: ${config.data_dir})`,
  ]
  if (what.stages.includes('ingest')) {
    if (what.token.source === 'generated') {
      lines.push(`ingest token (generated once, stored in ${what.token.path}): ${what.token.token}`)
    } else if (what.token.source === 'stored') {
      lines.push(`ingest token: stored in ${what.token.path}`)
    }
    lines.push(`  POST ${what.address}/v1/falco  /v1/cloudtrail  /v1/cloudtrail/firehose`)
  }
  if (what.stages.includes('sinks')) {
    lines.push(`  console ${what.address}/`)
    lines.push(`  GET  ${what.address}/v1/incidents  /v1/correlations  /v1/dead-letters  /v1/late-events`)
  }
  lines.push(`  GET  ${what.address}/healthz  /readyz  /metrics`)
  process.stderr.write(`${lines.join('\n')}\n`)
}

/**
 * What is listened on: the server's address, but the wildcard itself for a wildcard host (0.0.0.0, ::),
 * where the server names one local address (127.0.0.1), which reads as if only this machine could reach
 * nerve. The routes below it keep the local address: one to try them at from here.
 */
function listened(host: string, address: string): string {
  if (host !== '0.0.0.0' && host !== '::') return address
  const url = new URL(address)
  return `${url.protocol}//${host === '::' ? '[::]' : host}:${url.port}`
}
