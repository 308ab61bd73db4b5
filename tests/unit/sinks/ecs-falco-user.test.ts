// Falco's user.name comes from the container's /etc/passwd, which the watched agent writes: it can name its
// user after a real employee. Its event document keeps the name where Falco saw it (process.user.name, as
// Elastic's Falco integration maps it) but never offers it as a user to pivot on (related.user), where it
// would tie the employee to every alert of the agent. A real Falco alert (falco.org examples).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { normalizeFalcoAlert } from '../../../ingest/normalize-falco-alert.ts'
import { parseJson } from '../../../ingest/split-json-items.ts'
import type { FalcoAlert } from '../../../schemas/input-validators.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { buildEventDocument } from '../../../sinks/ecs-event-document.ts'
import type { EcsDocument } from '../../../sinks/ecs-field-mapping.ts'

const shell = parseJson(
  readFileSync(join(import.meta.dirname, '../../fixtures/falco/falco-website.ndjson'), 'utf8').split(
    '\n',
  )[9] as string,
) as FalcoAlert
const ctx = { via: 'falco_http_output' as const, receivedAt: 5, isSelfIdentity: () => false }

function documentOf(alert: FalcoAlert): EcsDocument {
  const result = normalizeFalcoAlert(alert, ctx)
  if (!result.ok) throw new Error(JSON.stringify(result.problems))
  const event: NormalizedEvent = { ...result.event, agent: { id: 'default/alpine', resolved_by: 'workload' } }
  return buildEventDocument(event, 'default', Date.UTC(2026, 0, 2))
}

describe("Falco's user name in an event document", () => {
  it('stays where Falco saw it, and out of related.user: the agent named it', () => {
    const fields = { ...(shell.output_fields as Record<string, unknown>), 'user.name': 'alice' }
    const doc = documentOf({ ...shell, output_fields: fields })
    expect((doc.process as EcsDocument).user).toEqual({ name: 'alice' })
    expect(JSON.stringify(doc.related ?? {})).not.toContain('alice')
  })
})
