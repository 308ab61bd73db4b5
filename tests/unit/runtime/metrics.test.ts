// /metrics with series of another thread merged in (runtime/metrics.ts addSource): the exposition must stay
// what it was with the main thread's registry alone, plus the other thread's series.
import { describe, expect, it } from 'vitest'
import { createMetrics } from '../../../runtime/metrics.ts'

describe('createMetrics with another source', () => {
  it('keeps every process metric of the main thread, process_start_time_seconds included', async () => {
    const alone = await createMetrics({ process: true }).render()
    expect(alone).toMatch(/^process_start_time_seconds \d+/m)

    const metrics = createMetrics({ process: true })
    const worker = createMetrics()
    worker.component('correlator').received(2)
    metrics.addSource(async () => worker.registry.getMetricsAsJSON())
    const merged = await metrics.render()
    expect(merged).toMatch(/^nerve_component_received_events_total\{component="correlator"\} 2$/m)
    const families = (text: string) => [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]).sort()
    expect(families(merged)).toEqual(families(alone))
    expect(merged).toMatch(/^process_start_time_seconds \d+/m)
  })

  it('serves a histogram of the other thread with its buckets, sum and count', async () => {
    const metrics = createMetrics()
    const worker = createMetrics()
    worker.histogram('nerve_test_lag_seconds', 'Lag.', [1, 5]).observe(3)
    metrics.addSource(async () => worker.registry.getMetricsAsJSON())
    expect(await metrics.render()).toContain(
      await worker.registry.getSingleMetricAsString('nerve_test_lag_seconds'),
    )
  })
})
