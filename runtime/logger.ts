// Operator logs: pino JSON lines on stderr. `log.warn({ error_code, count }, 'Rejected invalid items.')`:
// fields first, then a capitalised sentence. Log ids, never payloads. Child loggers bind `component`.
import { type Logger, pino } from 'pino'
import type { Config } from '../schemas/types.ts'

export type { Logger }

export function createLogger(
  config: Config['log'],
  destination: NodeJS.WritableStream = process.stderr,
): Logger {
  return pino(
    {
      level: config.level,
      base: { service: 'nerve' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

/** For tests and `nerve replay` (stdout is the product there). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' })
}
