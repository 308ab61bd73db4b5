// Metrics by one convention (Vector's component spec): every component emits
//   nerve_component_received_events_total, nerve_component_sent_events_total,
//   nerve_component_discarded_events_total{reason}, nerve_component_errors_total{error_code,stage}
// labelled component="falco_receiver". Label values are bounded: never agent ids or messages.
// Other metrics are named nerve_<area>_<what>_<unit>. prom-client does the bookkeeping.
import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client'
import type { ErrorCode } from './errors.ts'

export type Metrics = {
  registry: Registry
  component(name: string): ComponentTelemetry
  counter(name: string, help: string, labelNames?: readonly string[]): Counter<string>
  /**
   * One series of a counter made by counter(), for a hot path: its increments are summed in a number and
   * handed to prom-client when the metrics are read (prom-client's own `labels()` child still builds and
   * looks up its label key on every inc()). The series shows at 0 from now on.
   */
  bind(counter: Counter<string>, labels: Readonly<Record<string, string>>): BoundCounter
  /** `read`: the gauge's value, read when the metrics are rendered, instead of set() at every change. */
  gauge(name: string, help: string, labelNames?: readonly string[], read?: () => number): Gauge<string>
  histogram(name: string, help: string, buckets: number[], labelNames?: readonly string[]): Histogram<string>
  /** Series kept by another thread (a worker's registry, as JSON), served with these by render(). */
  addSource(collect: () => Promise<MetricSnapshot>): void
  /** Prometheus text exposition. */
  render(): Promise<string>
}

/** A registry's series as getMetricsAsJSON() gives them: what a worker thread sends to be served. */
export type MetricSnapshot = MetricObjectWithValues<MetricValue<string>>[]

export type BoundCounter = { inc(count?: number): void }

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

  /** Per counter, its bound series and what they counted since the counter was last read. */
  const boundSeries = new Map<Counter<string>, { labels: Record<string, string>; count: number }[]>()
  const counter = (name: string, help: string, labelNames: readonly string[] = []) =>
    once(
      name,
      () =>
        new Counter({
          name,
          help,
          labelNames,
          registers: [registry],
          // Runs before every read of the counter (render, getMetricsAsJSON, get).
          collect: function (this: Counter<string>) {
            for (const series of boundSeries.get(this) ?? []) {
              if (series.count === 0) continue
              this.inc(series.labels, series.count)
              series.count = 0
            }
          },
        }),
    )
  const bind = (made: Counter<string>, labels: Readonly<Record<string, string>>): BoundCounter => {
    if (metrics.get((made as unknown as { name: string }).name) !== made) {
      throw new Error("Only a counter made by this registry's counter() can be bound.")
    }
    const series = { labels: { ...labels }, count: 0 }
    made.inc(series.labels, 0)
    const list = boundSeries.get(made) ?? []
    list.push(series)
    boundSeries.set(made, list)
    return {
      inc: (count = 1) => {
        // As prom-client's inc(): a counter only goes up, by a finite number.
        if (!(count >= 0) || count === Number.POSITIVE_INFINITY) {
          throw new TypeError(`A counter is increased by a finite number ≥ 0, not ${count}.`)
        }
        series.count += count
      },
    }
  }
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
    // Bound once: counted in a number, read by prom-client when the metrics are. The series show in
    // /metrics at 0 before a component's first event.
    const receivedBound = bind(received, { component: name })
    const sentBound = bind(sent, { component: name })
    return {
      received: (count) => receivedBound.inc(count),
      sent: (count) => sentBound.inc(count),
      discarded: (count, reason) => discarded.inc({ component: name, reason }, count),
      error: (code, stage, count = 1) => errors.inc({ component: name, error_code: code, stage }, count),
    }
  }

  const sources: (() => Promise<MetricSnapshot>)[] = []
  const render = async () => {
    if (sources.length === 0) return registry.metrics()
    // Families of the same name (the component counters) are merged; their label sets never overlap.
    // Summed, whatever aggregator a family declares: prom-client's defaults are for copies of one process
    // (cluster workers) and would drop the main thread's `process_start_time_seconds` ('omit').
    const parts = await Promise.all([registry.getMetricsAsJSON(), ...sources.map((collect) => collect())])
    const summed = parts.map((part) => part.map((family) => ({ ...family, aggregator: 'sum' as const })))
    return AggregatorRegistry.aggregate(summed).metrics()
  }

  return {
    registry,
    component,
    counter,
    bind,
    gauge,
    histogram,
    addSource: (collect) => sources.push(collect),
    render,
  }
}
