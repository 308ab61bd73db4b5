// schemas/normalized-event.schema.json and the NormalizedEvent type stay in step: the key lists below
// are checked against the type by the compiler (`satisfies` requires every key and no other), and
// against the schema here; real samples, normalized, validate against the schema.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { validateNormalizedEvent } from '../../../schemas/input-validators.ts'
import schema from '../../../schemas/normalized-event.schema.json' with { type: 'json' }
import type {
  AgentRef,
  CoreFields,
  EdgeFields,
  IdentityFields,
  NormalizedEvent,
} from '../../../schemas/types.ts'

const keys = <T>(record: Record<keyof T, true>) => Object.keys(record).sort()

const eventKeys = keys<NormalizedEvent>({
  id: true,
  side: true,
  time: true,
  time_ns: true,
  time_original: true,
  received_at: true,
  via: true,
  agent: true,
  identity: true,
  edge: true,
  core: true,
  raw: true,
} satisfies Record<keyof NormalizedEvent, true>)
const agentKeys = keys<AgentRef>({ id: true, resolved_by: true } satisfies Record<keyof AgentRef, true>)
const identityKeys = keys<IdentityFields>({
  k8s_namespace: true,
  k8s_pod: true,
  k8s_service_account: true,
  k8s_pod_uid: true,
  cluster: true,
  container_id: true,
  container_image: true,
  host: true,
  principal_arn: true,
  role_arn: true,
  session_name: true,
  access_key_id: true,
  account_id: true,
} satisfies Record<keyof IdentityFields, true>)
const edgeKeys = keys<EdgeFields>({
  rule: true,
  priority: true,
  source: true,
  hostname: true,
  tags: true,
  output: true,
  output_fields: true,
  internal: true,
  process: true,
  network: true,
  file: true,
  user: true,
} satisfies Record<keyof EdgeFields, true>)
const coreKeys = keys<CoreFields>({
  action: true,
  event_source: true,
  event_name: true,
  event_type: true,
  read_only: true,
  error_code: true,
  error_message: true,
  principal_arn: true,
  principal_id: true,
  principal_type: true,
  session_issuer_arn: true,
  session_created: true,
  access_key_id: true,
  source_ip: true,
  user_agent: true,
  region: true,
  account_id: true,
  resources: true,
  target: true,
  revokes: true,
  by_nerve: true,
  credentials: true,
} satisfies Record<keyof CoreFields, true>)

type SchemaNode = { properties: Record<string, SchemaNode>; required?: string[] }
const root = schema as unknown as SchemaNode
const propertiesOf = (node: SchemaNode) => Object.keys(node.properties).sort()

describe('normalized-event schema and NormalizedEvent type', () => {
  it('name the same properties at every level', () => {
    expect(propertiesOf(root)).toEqual(eventKeys)
    expect(propertiesOf(root.properties.agent as SchemaNode)).toEqual(agentKeys)
    expect(propertiesOf(root.properties.identity as SchemaNode)).toEqual(identityKeys)
    expect(propertiesOf(root.properties.edge as SchemaNode)).toEqual(edgeKeys)
    expect(propertiesOf(root.properties.core as SchemaNode)).toEqual(coreKeys)
  })

  it('require what the type requires', () => {
    const optional = ['edge', 'core']
    expect([...(root.required ?? [])].sort()).toEqual(eventKeys.filter((k) => !optional.includes(k)))
  })

  it('accept every event normalized from the real samples', () => {
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const fixtures = join(import.meta.dirname, '../../fixtures')
    const files: [string, 'falco' | 'cloudtrail'][] = [
      ['falco/falco-website.ndjson', 'falco'],
      ['falco/falcosecurity-plugins.ndjson', 'falco'],
      ['cloudtrail/stratus-red-team-detonation-logs.ndjson', 'cloudtrail'],
      ['cloudtrail/aws-samples-eks-pod-identity.ndjson', 'cloudtrail'],
    ]
    let count = 0
    for (const [file, kind] of files) {
      const text = readFileSync(join(fixtures, file), 'utf8')
      const { events } = decoder.decode(kind, splitJsonItems(text, { maxItems: 1000, maxDepth: 64 }), {
        receivedAt: 0,
      })
      for (const event of events) {
        expect(validateNormalizedEvent(event), JSON.stringify(validateNormalizedEvent.errors)).toBe(true)
        count++
      }
    }
    expect(count).toBe(340)
  })
})
