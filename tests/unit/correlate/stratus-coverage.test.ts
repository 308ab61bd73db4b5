// Coverage of the built-in pack against the real Stratus Red Team detonation logs (35 AWS techniques):
// each technique's records, placed after a real Falco "Terminal shell in container" alert of the same
// agent, must produce a correlation for at least 30 of them (stratus-detonations.ts builds the input).
import { describe, expect, it } from 'vitest'
import { detonate, stratusTechniques } from './stratus-detonations.ts'

describe('the built-in pack against the Stratus Red Team detonations', () => {
  const results = stratusTechniques.map(([name, from, to]) => ({ name, found: detonate(from, to) }))

  it('correlates at least 30 of the 35 techniques after a shell alert from the same agent', () => {
    const missed = results.filter((r) => r.found.length === 0).map((r) => r.name)
    expect(missed, `missed: ${missed.join(', ')}`).toHaveLength(0)
    expect(results.filter((r) => r.found.length > 0).length).toBeGreaterThanOrEqual(30)
  })

  it('names the MITRE ATT&CK tactics and techniques of every correlation', () => {
    for (const { found } of results) {
      for (const c of found) {
        expect(c.rule.mitre?.tactics.length, c.rule.id).toBeGreaterThan(0)
        expect(c.rule.mitre?.techniques.length, c.rule.id).toBeGreaterThan(0)
        for (const t of [...(c.rule.mitre?.tactics ?? []), ...(c.rule.mitre?.techniques ?? [])])
          expect(t.name, t.id).toBeTruthy()
      }
    }
  })

  it('counts denied attempts and says so in the reasons', () => {
    const leave = results.find((r) => r.name === 'aws.defense-evasion.organizations-leave')?.found ?? []
    const denied = leave.find((c) => c.core.error_code === 'AccessDenied')
    expect(denied?.rule.id).toBe('runtime-alert-then-organization-change')
    expect(denied?.reasons.find((r) => r.factor === 'failed_attempt')?.detail).toMatch(/denied/)
  })
})
