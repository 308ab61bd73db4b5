// An incident is named by the sha256 of its agent and its earliest correlation (correlation-id.ts). The
// grouper checks that name at every correlation the incident gathers; it hashes it only when the earliest
// correlation is one it has not named yet (a new incident, a newcomer that comes first, a merge, the first
// correlation after a restore), and every id stays what the hash gives.
import { describe, expect, it, vi } from 'vitest'

const hashed = vi.hoisted(() => ({ count: 0 }))
vi.mock('../../../correlate/correlation-id.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../correlate/correlation-id.ts')>()
  return {
    ...real,
    incidentId: (agentId: string, correlationId: string) => {
      hashed.count++
      return real.incidentId(agentId, correlationId)
    },
  }
})

const { createIncidentGrouper } = await import('../../../correlate/group-incidents.ts')
const { incidentId } = await import('../../../correlate/correlation-id.ts')

const gap = 1_800_000
const T0 = Date.UTC(2026, 11, 6, 12)
const signals = ['edge:Terminal shell in container', 'core:iam:AttachRolePolicy']
const corr = (n: number) => `c${String(n).padStart(4, '0')}`

describe('incident ids', () => {
  it('hashes an incident id once per earliest correlation, not once per correlation', () => {
    const [first, newcomer] = [incidentId('a', corr(0)), incidentId('a', corr(100))]
    const grouper = createIncidentGrouper(gap)
    hashed.count = 0
    const ids = Array.from(
      { length: 100 },
      (_, i) => grouper.assign('a', T0 + i * 60_000, corr(i), signals).id,
    )
    expect(new Set(ids)).toEqual(new Set([first]))
    expect(hashed.count).toBe(1)

    // A newcomer before the earliest renames the incident: one more hash, then none for later ones.
    hashed.count = 0
    const renamed = grouper.assign('a', T0 - 60_000, corr(100), signals)
    expect(renamed.id).toBe(newcomer)
    expect(renamed.merged).toEqual([first])
    expect(grouper.assign('a', T0 + 100 * 60_000, corr(101), signals).id).toBe(newcomer)
    expect(hashed.count).toBe(1)
  })

  it('names a restored incident by its earliest correlation, as before the restart', () => {
    const first = createIncidentGrouper(gap, [], 100, true)
    for (let i = 0; i < 5; i++) first.assign('a', T0 + i * 60_000, corr(i), signals)
    const restored = createIncidentGrouper(gap, first.snapshot(), 100, true)
    const named = incidentId('a', corr(0))
    hashed.count = 0
    for (let i = 5; i < 50; i++)
      expect(restored.assign('a', T0 + i * 60_000, corr(i), signals).id).toBe(named)
    expect(hashed.count).toBe(1)
  })
})
