// Operator logs: pino JSON lines on stderr. `log.warn({ error_code, count }, 'Rejected invalid items.')`:
// fields first, then a capitalised sentence. Log ids, never payloads. Child loggers bind `component`.
// Ids are the watched agent's text too (an agent id that falls back to its role ARN or workload name, an
// error quoting its input): each line is written with the characters a terminal would act on, or that
// reorder or hide text, as `\u` escapes (JSON escapes only the C0 controls), for `kubectl logs` and `jq -r`.
import { type Logger, pino } from 'pino'
import type { Config } from '../schemas/types.ts'
import { terminalJsonText } from './terminal-text.ts'

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
      // On the whole line as pino wrote it: every field, the message, bound fields and errors alike.
      hooks: { streamWrite: terminalJsonText },
    },
    destination,
  )
}

/** For tests and `nerve replay` (stdout is the product there). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' })
}

/**
 * Where `log` writes its lines (its pino destination; stderr when it has none of its own): a worker thread's
 * lines, already written by a pino logger of its own, go there as they are.
 */
export function logDestination(log: Logger): { write(line: string): void } {
  const withStream = log as Logger & Record<symbol, { write(line: string): void } | undefined>
  return withStream[pino.symbols.streamSym] ?? process.stderr
}
