// A detection engineer pivots from a correlation alert to the CloudTrail call it names on the user fields.
// Each user field and the caller's ARN the alert carries must hold the same value in nerve's own document of
// that call and in the one Elastic's AWS integration makes of it (its cloudtrail default pipeline, read, not
// copied: user.id = userIdentity.principalId, aws.cloudtrail.user_identity.arn = userIdentity.arn, user.name =
// the session issuer's user name, else userIdentity.userName). Real Stratus Red Team detonations, each after
// a real Falco shell alert of the same pod (stratus-detonations.ts).
import { describe, expect, it } from 'vitest'
import type { Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { buildCorrelationDocument } from '../../../sinks/ecs-correlation-document.ts'
import { buildEventDocument } from '../../../sinks/ecs-event-document.ts'
import type { EcsDocument } from '../../../sinks/ecs-field-mapping.ts'
import { componentTemplates, indexTemplates } from '../../../sinks/elasticsearch-templates.ts'
import { detonation, stratusRecords, stratusTechniques } from '../correlate/stratus-detonations.ts'

const ingestedAt = Date.UTC(2026, 0, 2, 3, 4, 5)

type Pivot = { 'user.id'?: string; 'user.name'?: string; 'aws.cloudtrail.user_identity.arn'?: string }
type UserIdentity = {
  principalId?: string
  arn?: string
  userName?: string
  sessionContext?: { sessionIssuer?: { userName?: string } }
}

const at = (doc: EcsDocument, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v as EcsDocument | undefined)?.[k], doc)

/** The pivot fields a document carries (absent ones left out). */
function pivotOf(doc: EcsDocument): Pivot {
  const fields = ['user.id', 'user.name', 'aws.cloudtrail.user_identity.arn'] as const
  return Object.fromEntries(fields.flatMap((f) => (at(doc, f) === undefined ? [] : [[f, at(doc, f)]])))
}

/** What Elastic's AWS integration's pipeline puts in the pivot fields of a CloudTrail record. */
function integrationPivot(record: { userIdentity?: UserIdentity }): Pivot {
  const ui = record.userIdentity ?? {}
  const name = ui.sessionContext?.sessionIssuer?.userName ?? ui.userName
  const pivot: Pivot = {}
  if (ui.principalId) pivot['user.id'] = ui.principalId
  if (name) pivot['user.name'] = name
  if (ui.arn) pivot['aws.cloudtrail.user_identity.arn'] = ui.arn
  return pivot
}

function documentsOf(events: NormalizedEvent[], c: Correlation) {
  const event = events.find((e) => e.id === c.core.event_id) as NormalizedEvent
  return {
    record: event.raw as { userIdentity?: UserIdentity },
    alert: buildCorrelationDocument(c, 'default', ingestedAt),
    call: buildEventDocument(event, 'default', ingestedAt),
  }
}

describe('pivoting from a correlation alert to its CloudTrail call', () => {
  it.each(stratusTechniques)('%s: the alert says who called as the call documents do', (_name, from, to) => {
    const { events, correlations } = detonation(stratusRecords(from, to))
    for (const c of correlations) {
      const { record, alert, call } = documentsOf(events, c)
      const pivot = pivotOf(alert)
      // The caller's ARN and principal id are always there to pivot on, the same in all three documents.
      expect(pivot['aws.cloudtrail.user_identity.arn']).toBe(record.userIdentity?.arn)
      expect(pivot['user.id']).toBe(record.userIdentity?.principalId)
      // Whatever else the alert names, the call's documents name alike: nothing to pivot on finds nothing.
      const call_ = pivotOf(call)
      const integration = integrationPivot(record)
      for (const [field, value] of Object.entries(pivot)) {
        expect({ field, value: call_[field as keyof Pivot] }).toEqual({ field, value })
        expect({ field, value: integration[field as keyof Pivot] }).toEqual({ field, value })
      }
      expect(call_['user.id']).toBe(integration['user.id'])
      expect(call_['user.name']).toBe(integration['user.name'])
    }
  })

  it("names no one after a session name: the watched agent chooses its own (sts:AssumeRole's RoleSessionName)", () => {
    // The agent names its session after a real user of these logs, christophe.
    const records = stratusRecords(1, 34).map((r) => {
      const text = JSON.stringify(r).replaceAll('aws-go-sdk-1722375070115152000', 'christophe')
      return JSON.parse(text) as Record<string, unknown>
    })
    const { events, correlations } = detonation(records)
    expect(correlations.length).toBeGreaterThan(0)
    for (const c of correlations) {
      const { alert, call } = documentsOf(events, c)
      for (const doc of [alert, call]) {
        expect(pivotOf(doc)).toMatchObject({
          'user.name': 'stratus-red-team-ec2-get-password-data-role',
          'aws.cloudtrail.user_identity.arn':
            'arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/christophe',
        })
        expect((doc.related as { user?: string[] }).user ?? []).not.toContain('christophe')
      }
    }
  })

  it("maps the caller's ARN as a keyword in the alerts' data stream and the CloudTrail calls'", () => {
    const arnPath = 'mappings.properties.aws.properties.cloudtrail.properties.user_identity.properties.arn'
    const arnMapping = (template: unknown) => at(template as EcsDocument, arnPath)
    for (const name of ['nerve-correlations', 'nerve-events', 'nerve-aws-cloudtrail']) {
      const composed = indexTemplates.find((t) => t.name === name)?.composed_of ?? []
      const mapped = componentTemplates
        .filter((c) => composed.includes(c.name))
        .map((c) => arnMapping(c.template))
        .find((m) => m !== undefined)
      expect({ name, mapped }).toMatchObject({ name, mapped: { type: 'keyword' } })
    }
  })
})
