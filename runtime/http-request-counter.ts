// nerve_http_requests_total{route,status}: every answer counted, by the route's own url and the status.
import type { BoundCounter, Metrics } from './metrics.ts'

/**
 * The series of each route and status, bound once (metrics.bind: prom-client hashes a label object per
 * inc()), found by the route's own string and the status number: no key is built per request.
 */
export function createRequestCounter(metrics: Metrics): (route: string, status: number) => void {
  const requests = metrics.counter('nerve_http_requests_total', 'HTTP requests by route and status.', [
    'route',
    'status',
  ])
  const bound = new Map<string, Map<number, BoundCounter>>()
  return (route, status) => {
    let byStatus = bound.get(route)
    if (!byStatus) {
      byStatus = new Map()
      bound.set(route, byStatus)
    }
    let series = byStatus.get(status)
    if (!series) {
      // Bounded: routes are the table's (or 'unmatched'), statuses the few of httpStatusByCode.
      series = metrics.bind(requests, { route, status: String(status) })
      byStatus.set(status, series)
    }
    series.inc()
  }
}
