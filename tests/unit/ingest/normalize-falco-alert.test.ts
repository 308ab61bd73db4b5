import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { normalizeFalcoAlert } from '../../../ingest/normalize-falco-alert.ts'
import { parseEventTime } from '../../../ingest/parse-event-time.ts'
import { parseJson } from '../../../ingest/split-json-items.ts'
import type { FalcoAlert } from '../../../schemas/input-validators.ts'

const ctx = { via: 'falco_http_output' as const, receivedAt: 5, isSelfIdentity: () => false }
const lines = (file: string) =>
  readFileSync(join(import.meta.dirname, '../../fixtures/falco', file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => parseJson(l) as FalcoAlert)
const website = lines('falco-website.ndjson')
const normalize = (alert: FalcoAlert) => {
  const result = normalizeFalcoAlert(alert, ctx)
  if (!result.ok) throw new Error(JSON.stringify(result.problems))
  return result.event
}

describe('parseEventTime', () => {
  it('keeps nanoseconds, canonicalizes to 9 digits in UTC, and refuses impossible dates', () => {
    expect(parseEventTime('2021-01-11T23:46:19.82302759Z')).toEqual({
      ms: Date.parse('2021-01-11T23:46:19.823Z'),
      ns: 27590,
      canonical: '2021-01-11T23:46:19.823027590Z',
    })
    expect(parseEventTime('2020-03-03T17:50:03.391768+00:00')?.canonical).toBe(
      '2020-03-03T17:50:03.391768000Z',
    )
    expect(parseEventTime('2020-03-03T19:50:03+02:00')?.ms).toBe(Date.parse('2020-03-03T17:50:03Z'))
    expect(parseEventTime('2024-02-30T00:00:00Z')).toBeUndefined()
    expect(parseEventTime('2021-04-13T20:58:00.746609046Z+2')).toBeUndefined()
  })
})

describe('normalizeFalcoAlert', () => {
  it('gives the same id to an alert straight from Falco and re-encoded by Falcosidekick', () => {
    const falco = website[9] as FalcoAlert
    const sidekick: FalcoAlert = {
      ...falco,
      uuid: '7466e462-ddde-434d-8dee-390ca5656f83',
      time: falco.time.replace(/0+Z$/, 'Z'),
      source: undefined,
      output_fields: Object.fromEntries(Object.entries(falco.output_fields ?? {}).reverse()),
    }
    expect(normalize(sidekick).id).toBe(normalize({ ...falco, time: '2021-01-11T23:46:19.823027590Z' }).id)
    expect(normalize(falco).id).toMatch(/^[0-9a-f]{32}$/)
  })

  it('maps the fields a detection engineer filters on, keeping output_fields and 19-digit integers', () => {
    const event = normalize(website[19] as FalcoAlert)
    expect(event).toMatchObject({
      side: 'edge',
      time_original: '2023-05-25T13:44:05.478445995Z',
      time_ns: 445995,
      identity: {
        k8s_namespace: 'default',
        k8s_pod: 'kubecon',
        container_id: 'ee97d9c4186f',
        host: 'falco-xczjd',
      },
      edge: { rule: 'Terminal shell in container', priority: 'critical', source: 'syscall', internal: false },
    })
    const plugin = lines('falcosecurity-plugins.ndjson')[4] as FalcoAlert
    expect(normalize(plugin).edge?.output_fields['evt.time']).toBe('1746622234502309868')
    expect(normalize(plugin).edge?.file).toEqual({ path: '/etc/shadow' })
  })

  it('marks internal messages, and takes the k8s_audit actor service account as identity', () => {
    expect(normalize(website[14] as FalcoAlert).edge?.internal).toBe(true)
    const audit = {
      ...(website[0] as FalcoAlert),
      output_fields: { 'ka.user.name': 'system:serviceaccount:agents:data-cleaner' },
    }
    expect(normalize(audit).identity).toEqual({
      k8s_namespace: 'agents',
      k8s_service_account: 'data-cleaner',
    })
  })

  it('writes identity and details with only their present keys, in the published order', () => {
    const alert: FalcoAlert = {
      ...(website[0] as FalcoAlert),
      source: 'syscall',
      hostname: 'node-1',
      output_fields: {
        'user.uid': 0,
        'fd.l4proto': 'tcp',
        'fd.sport': '443',
        'fd.cip': '10.0.0.9',
        'proc.pid': '4242',
        'proc.name': 'curl',
        'container.image.repository': 'ghcr.io/acme/worker',
        'container.id': 'host',
        'k8s.pod.name': 'worker-7f9c',
        'k8smeta.ns.name': 'agents',
        'ka.user.name': 'system:serviceaccount:agents:worker',
      },
    }
    const event = normalize(alert)
    expect(JSON.stringify(event.identity)).toBe(
      '{"k8s_namespace":"agents","k8s_pod":"worker-7f9c","container_image":"ghcr.io/acme/worker",' +
        '"k8s_service_account":"worker","host":"node-1"}',
    )
    expect(JSON.stringify(event.edge?.process)).toBe('{"name":"curl","pid":4242}')
    expect(JSON.stringify(event.edge?.network)).toBe(
      '{"remote_port":443,"local_ip":"10.0.0.9","proto":"tcp"}',
    )
    expect(JSON.stringify(event.edge?.user)).toBe('{"uid":0}')
    expect(event.edge && 'file' in event.edge).toBe(false)
    const bare = normalize({ ...(website[0] as FalcoAlert), output_fields: {} })
    expect(bare.edge && ['process', 'network', 'file', 'user'].some((k) => k in (bare.edge ?? {}))).toBe(
      false,
    )
  })

  it("turns a cloudtrail-plugin alert into a core event whose id is ct.id, with its caller's principal id", () => {
    const alert: FalcoAlert = {
      time: '2024-04-16T09:20:04.000000000Z',
      rule: 'Create AWS user',
      priority: 'Informational',
      source: 'aws_cloudtrail',
      output: 'A new AWS user has been created',
      output_fields: {
        'ct.id': '7b7e4636-4713-3d04-b86a-cd6774cdbae9',
        'ct.src': 'iam.amazonaws.com',
        'ct.name': 'CreateUser',
        'ct.user.arn': 'arn:aws:iam::123456789012:user/Alice',
        'ct.user.principalid': 'AIDAJQABLZS4A3QDU576Q',
        'ct.srcip': '192.0.2.1',
        'ct.region': 'us-east-1',
      },
    }
    expect(normalize(alert)).toMatchObject({
      id: '7b7e4636-4713-3d04-b86a-cd6774cdbae9',
      side: 'core',
      core: {
        action: 'iam:CreateUser',
        principal_arn: 'arn:aws:iam::123456789012:user/Alice',
        principal_id: 'AIDAJQABLZS4A3QDU576Q',
        source_ip: '192.0.2.1',
      },
      identity: { principal_arn: 'arn:aws:iam::123456789012:user/Alice' },
    })
    // The principal id is what the call says, never an identifier of the agent.
    expect(JSON.stringify(normalize(alert).identity)).not.toContain('AIDAJQABLZS4A3QDU576Q')
  })
})
