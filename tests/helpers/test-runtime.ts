// What a component needs from the runtime, in memory, so tests can assert on logs and metrics.
import { Writable } from 'node:stream'
import { createLogger, type Logger } from '../../runtime/logger.ts'
import { createMetrics, type Metrics } from '../../runtime/metrics.ts'

export type LogLine = { level: string; msg: string; [key: string]: unknown }

export type TestRuntime = {
  log: Logger
  metrics: Metrics
  logs: LogLine[]
  now: () => number
  /** Current value of a metric series, 0 when absent. */
  metricValue(name: string, labels?: Record<string, string>): Promise<number>
}

export function createTestRuntime(opts: { now?: () => number; level?: 'debug' | 'info' } = {}): TestRuntime {
  const logs: LogLine[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line))
      done()
    },
  })
  const log = createLogger({ level: opts.level ?? 'debug' }, sink)
  const metrics = createMetrics()
  const metricValue = async (name: string, labels: Record<string, string> = {}) => {
    const metric = metrics.registry.getSingleMetric(name)
    if (!metric) return 0
    const { values } = await metric.get()
    return values
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .filter((v) => !('metricName' in v) || v.metricName === name || v.metricName === undefined)
      .reduce((sum, v) => sum + v.value, 0)
  }
  return { log, metrics, logs, now: opts.now ?? Date.now, metricValue }
}
