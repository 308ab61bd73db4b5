// /metrics with series of another thread merged in (runtime/metrics.ts addSource): the exposition must stay
// what it was with the main thread's registry alone, plus the other thread's series.
import { describe, expect, it, vi } from 'vitest'
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

describe('a bound counter (metrics.bind)', () => {
  it('counts without calling prom-client, and hands the sum over when the counter is read', async () => {
    const metrics = createMetrics()
    const requests = metrics.counter('nerve_test_requests_total', 'Requests.', ['route', 'status'])
    const ok = metrics.bind(requests, { route: '/v1/falco', status: '202' })
    expect(await metrics.render()).toMatch(
      /^nerve_test_requests_total\{route="\/v1\/falco",status="202"\} 0$/m,
    )
    const inc = vi.spyOn(requests, 'inc')
    for (let i = 0; i < 1000; i++) ok.inc()
    ok.inc(5)
    expect(inc).not.toHaveBeenCalled()
    expect(await metrics.render()).toMatch(
      /^nerve_test_requests_total\{route="\/v1\/falco",status="202"\} 1005$/m,
    )
    // Read again, nothing counted twice; counted again, added.
    ok.inc(2)
    expect((await requests.get()).values).toEqual([
      { value: 1007, labels: { route: '/v1/falco', status: '202' } },
    ])
    expect(await metrics.render()).toMatch(
      /^nerve_test_requests_total\{route="\/v1\/falco",status="202"\} 1007$/m,
    )
  })

  it('keeps series of other labels apart, including those counted through prom-client itself', async () => {
    const metrics = createMetrics()
    const requests = metrics.counter('nerve_test_requests_total', 'Requests.', ['status'])
    const ok = metrics.bind(requests, { status: '202' })
    const bad = metrics.bind(requests, { status: '400' })
    ok.inc(3)
    bad.inc()
    requests.inc({ status: '202' }, 10)
    requests.inc({ status: '503' })
    const values = Object.fromEntries((await requests.get()).values.map((v) => [v.labels.status, v.value]))
    expect(values).toEqual({ '202': 13, '400': 1, '503': 1 })
  })

  it('refuses what prom-client refuses: a negative or non-finite increase', () => {
    const metrics = createMetrics()
    const ok = metrics.bind(metrics.counter('nerve_test_total', 'Test.'), {})
    expect(() => ok.inc(-1)).toThrow(TypeError)
    expect(() => ok.inc(Number.NaN)).toThrow(TypeError)
    expect(() => ok.inc(Number.POSITIVE_INFINITY)).toThrow(TypeError)
  })

  it("is summed into a worker's series that the main thread serves", async () => {
    const metrics = createMetrics()
    const worker = createMetrics()
    worker.component('correlator').sent(4)
    worker.component('correlator').sent(3)
    metrics.addSource(async () => worker.registry.getMetricsAsJSON())
    expect(await metrics.render()).toMatch(/^nerve_component_sent_events_total\{component="correlator"\} 7$/m)
  })
})
