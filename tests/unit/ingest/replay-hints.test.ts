import { describe, expect, it } from 'vitest'
import { replayHints } from '../../../ingest/replay-hints.ts'

describe('replay hints', () => {
  it('suggests --order time when most events of an --order input replay were late', () => {
    const [hint] = replayHints({ order: 'input', read: 29, late: 20, correlations: 1, registered: 1 })
    expect(hint).toContain('20 of 29 events were late')
    expect(hint).toContain('--order time')
  })

  it('suggests a larger grace when events are late even in time order', () => {
    const [hint] = replayHints({ order: 'time', read: 10, late: 9, correlations: 0, registered: 1 })
    expect(hint).toContain('correlation.window.grace')
  })

  it('points at the registry when nothing joined and there is none', () => {
    const hints = replayHints({ order: 'time', read: 29, late: 0, correlations: 0, registered: 0 })
    expect(hints).toHaveLength(1)
    expect(hints[0]).toContain('agents:')
  })

  it('stays quiet on a replay that found what it could', () => {
    expect(replayHints({ order: 'time', read: 29, late: 0, correlations: 10, registered: 1 })).toEqual([])
    expect(replayHints({ order: 'time', read: 0, late: 0, correlations: 0, registered: 0 })).toEqual([])
  })
})
