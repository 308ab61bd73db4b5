// Where a correlation goes, its caller's principal id (core.principal_id) goes with it: the Elasticsearch
// alert's user.id (as Elastic's AWS integration and nerve's own CloudTrail documents have it), the revoke
// webhook's correlation, and the read API's item, each as the record has it, absent when it is absent.
// Real Stratus Red Team detonations (stratus-detonations.ts).
import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation } from '../../../schemas/types.ts'
import { compileSchema, formatValidationErrors } from '../../../schemas/validators.ts'
import { buildCorrelationDocument } from '../../../sinks/ecs-correlation-document.ts'
import type { EcsDocument } from '../../../sinks/ecs-field-mapping.ts'
import { buildRevokeEvent } from '../../../sinks/revoke-payload.ts'
import { revokeDecisionId } from '../../../sinks/revoke-policy.ts'
import { detonate, whoAmIConfig } from '../correlate/stratus-detonations.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const isCorrelation = compileSchema<Correlation>('correlation.schema.json')
const isRevokeWebhook = compileSchema('revoke-webhook.schema.json')
const ingestedAt = Date.UTC(2026, 0, 2, 3, 4, 5)

/** sts:GetFederationToken, then a call by the federated user it made (lines 308–309). */
const federation = () => detonate(308, 309, whoAmIConfig)
/** The correlation of the federated user's own call: its principal id is `ACCOUNT:caller-chosen-name`. */
const federated = () => federation().find((c) => c.core.principal.includes(':federated-user/')) as Correlation
const withoutId = (c: Correlation): Correlation => {
  const { principal_id: _, ...core } = c.core
  return { ...c, core }
}

describe("the caller's principal id in what nerve sends on", () => {
  it("is the alert's user.id, and the alert has none when the correlation has none", () => {
    const correlations = [...detonate(1, 34), ...federation()]
    expect(correlations.length).toBeGreaterThan(0)
    for (const c of correlations) {
      expect(c.core.principal_id).toBeDefined()
      const alert = buildCorrelationDocument(c, 'default', ingestedAt)
      expect((alert.user as EcsDocument).id).toBe(c.core.principal_id)
      expect(((alert.nerve as EcsDocument).core as EcsDocument).principal_id).toBe(c.core.principal_id)
      // Not a user to pivot on by name: the integration leaves it out of related.user too.
      expect((alert.related as { user?: string[] } | undefined)?.user ?? []).not.toContain(
        c.core.principal_id,
      )
      const older = buildCorrelationDocument(withoutId(c), 'default', ingestedAt)
      expect((older.user as EcsDocument | undefined)?.id).toBeUndefined()
    }
  })

  it("is in the revoke webhook's correlation, as in the record", () => {
    const c = federated()
    const wire = JSON.parse(JSON.stringify(buildRevokeEvent(c, revokeDecisionId(c.incident.id), ingestedAt)))
    expect(isRevokeWebhook(wire), JSON.stringify(isRevokeWebhook.errors)).toBe(true)
    expect(wire.data.correlation.core.principal_id).toBe('742491224508:stratus_red_team')
    // The agent is still named by its ARN, never by the id its caller chose.
    expect(wire.data.agent.principal).toBe('arn:aws:sts::742491224508:federated-user/stratus_red_team')
  })

  it('is in the read API item, which validates, and absent from an item stored without it', async () => {
    const c = federated()
    const older = { ...withoutId(c), id: `${c.id.slice(0, -1)}0` }
    const { store, get } = openStore()
    store.writeCorrelations([c, older])
    const items = (await get('/v1/correlations')).body.items as Correlation[]
    expect(items).toHaveLength(2)
    const byId = new Map(items.map((item) => [item.id, item]))
    expect(byId.get(c.id)?.core.principal_id).toBe('742491224508:stratus_red_team')
    expect(byId.get(older.id)?.core).not.toHaveProperty('principal_id')
    for (const item of items) {
      const ok = isCorrelation(item)
      expect(formatValidationErrors(isCorrelation.errors), item.id).toEqual([])
      expect(ok).toBe(true)
    }
  })
})
