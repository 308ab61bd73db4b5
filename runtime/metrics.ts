// Metrics by one convention (Vector's component spec): every component emits
//   nerve_component_received_events_total, nerve_component_sent_events_total,
//   nerve_component_discarded_events_total{reason}, nerve_component_errors_total{error_code,stage}
// labelled component="falco_receiver". Label values are bounded: never agent ids or messages.
// Other metrics are named nerve_<area>_<what>_<unit>. prom-client does the bookkeeping.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { ErrorCode } from './errors.ts'

export type Metrics = {
  registry: Registry
  component(name: string): ComponentTelemetry
  counter(name: string, help: string, labelNames?: readonly string[]): Counter<string>
  /** `read`: the gauge's value, read when the metrics are rendered, instead of set() at every change. */
  gauge(name: string, help: string, labelNames?: readonly string[], read?: () => number): Gauge<string>
  histogram(name: string, help: string, buckets: number[], labelNames?: readonly string[]): Histogram<string>
  /** Prometheus text exposition. */
  render(): Promise<string>
}

export type ComponentTelemetry = {
  received(count: number): void
  sent(count: number): void
  discarded(count: number, reason: string): void
  error(code: ErrorCode, stage: string, count?: number): void
}

/** `process: true` (the serving commands): prom-client's default process and Node.js metrics too. */
export function createMetrics(options: { process?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (options.process) collectDefaultMetrics({ register: registry })
  const metrics = new Map<string, Counter<string> | Gauge<string> | Histogram<string>>()

  const once = <M extends Counter<string> | Gauge<string> | Histogram<string>>(
    name: string,
    make: () => M,
  ): M => {
    const existing = metrics.get(name)
    if (existing) return existing as M
    const created = make()
    metrics.set(name, created)
    return created
  }

  const counter = (name: string, help: string, labelNames: readonly string[] = []) =>
    once(name, () => new Counter({ name, help, labelNames, registers: [registry] }))
  const gauge = (name: string, help: string, labelNames: readonly string[] = [], read?: () => number) =>
    once(
      name,
      () =>
        new Gauge({
          name,
          help,
          labelNames,
          registers: [registry],
          ...(read
            ? {
                collect: function (this: Gauge<string>) {
                  this.set(read())
                },
              }
            : {}),
        }),
    )
  const histogram = (name: string, help: string, buckets: number[], labelNames: readonly string[] = []) =>
    once(name, () => new Histogram({ name, help, buckets, labelNames, registers: [registry] }))

  const received = counter('nerve_component_received_events_total', 'Events a component received.', [
    'component',
  ])
  const sent = counter('nerve_component_sent_events_total', 'Events a component passed on.', ['component'])
  const discarded = counter(
    'nerve_component_discarded_events_total',
    'Events a component dropped on purpose.',
    ['component', 'reason'],
  )
  const errors = counter('nerve_component_errors_total', 'Errors a component met.', [
    'component',
    'error_code',
    'stage',
  ])

  const component = (name: string): ComponentTelemetry => {
    // Bound once: a labelled child costs a hash of its labels on every call, a bound one nothing. Touching
    // the series shows a component's counters in /metrics at 0 before its first event.
    const receivedBound = received.labels({ component: name })
    const sentBound = sent.labels({ component: name })
    receivedBound.inc(0)
    sentBound.inc(0)
    return {
      received: (count) => receivedBound.inc(count),
      sent: (count) => sentBound.inc(count),
      discarded: (count, reason) => discarded.inc({ component: name, reason }, count),
      error: (code, stage, count = 1) => errors.inc({ component: name, error_code: code, stage }, count),
    }
  }

  return { registry, component, counter, gauge, histogram, render: () => registry.metrics() }
}
