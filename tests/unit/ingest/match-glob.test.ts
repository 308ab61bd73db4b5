import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileFirstMatch, compileGlob, compileGlobs } from '../../../ingest/match-glob.ts'
import type { UnresolvedEvent } from '../../../ingest/normalized-draft.ts'
import { createAgentResolver } from '../../../ingest/resolve-agent-identity.ts'
import { globToRegExp } from '../../../runtime/glob.ts'
import type { IdentityFields } from '../../../schemas/types.ts'
import { agent } from './ingest-harness.ts'

describe('compileFirstMatch', () => {
  it('answers the first entry whose literal or wildcard pattern matches, whichever kind comes first', () => {
    const first = compileFirstMatch([['a-*'], undefined, ['exact', 'b?'], ['a-1', '*']])
    expect(first('a-1')).toBe(0)
    expect(first('exact')).toBe(2)
    expect(first('b2')).toBe(2)
    expect(first('zzz')).toBe(3)
    expect(first(undefined)).toBe(Number.POSITIVE_INFINITY)
    expect(compileFirstMatch([['x'], ['x', 'y']])('y')).toBe(1)
    expect(compileFirstMatch([])('x')).toBe(Number.POSITIVE_INFINITY)
  })

  it('answers what trying every pattern in entry order answers, prefix globs included', () => {
    const pattern = fc.oneof(
      fc.constantFrom('a', 'ab', 'a-1', 'b'),
      fc.constantFrom('a*', 'ab*', 'a-*', '*', 'a?', '*1', 'a*1', 'b*'),
    )
    const entries = fc.array(fc.option(fc.array(pattern, { maxLength: 3 }), { nil: undefined }), {
      maxLength: 6,
    })
    fc.assert(
      fc.property(entries, fc.constantFrom('a', 'ab', 'a-1', 'abc', 'b', 'b1', '', 'zz'), (list, value) => {
        const naive = list.findIndex((patterns) => (patterns ?? []).some((p) => globToRegExp(p).test(value)))
        expect(compileFirstMatch(list)(value)).toBe(naive === -1 ? Number.POSITIVE_INFINITY : naive)
      }),
    )
  })

  it('compiles each glob to what its regular expression answers, prefix and suffix globs included', () => {
    const pattern = fc.constantFrom(
      'a',
      '',
      '*',
      '**',
      'a*',
      '*a',
      'a*b',
      '*a*',
      'a?',
      '?',
      'ab*',
      '*1',
      'a.*',
    )
    const value = fc.option(fc.constantFrom('a', 'ab', 'a-1', 'a.b', 'ba', '', 'b1', 'a\nb'), {
      nil: undefined,
    })
    fc.assert(
      fc.property(pattern, value, (p, v) => {
        expect(compileGlob(p)(v)).toBe(v !== undefined && globToRegExp(p).test(v))
      }),
    )
  })

  it('keeps compileGlobs matching either of two values, and nothing without patterns', () => {
    const either = compileGlobs(['arn:*:role/nerve', 'x'])
    expect(either(undefined, 'arn:aws:iam::1:role/nerve')).toBe(true)
    expect(either('x')).toBe(true)
    expect(either('y', undefined)).toBe(false)
    expect(compileGlobs()('x', 'y')).toBe(false)
  })
})

describe('registry look-up', () => {
  const resolve = (agents: Parameters<typeof createAgentResolver>[0], identity: IdentityFields) =>
    createAgentResolver(agents).resolve({ id: 'e1', side: 'core', time: 0, identity } as UnresolvedEvent)
      .agent

  it('tries the kinds most specific first, and within a kind the agent listed first', () => {
    const agents = [
      agent('by-host', { hosts: ['i-*'] }),
      agent('by-role-glob', { aws: ['arn:aws:iam::1:role/*'] }),
      agent('by-role', { aws: ['arn:aws:iam::1:role/app'], access_keys: ['ASIA1'] }),
    ]
    const role = { role_arn: 'arn:aws:iam::1:role/app', host: 'i-0123456789' }
    expect(resolve(agents, role)).toEqual({ id: 'by-role-glob', resolved_by: 'registry' })
    expect(resolve(agents, { ...role, access_key_id: 'ASIA1' })).toEqual({
      id: 'by-role',
      resolved_by: 'registry',
    })
    expect(resolve(agents, { host: 'i-0123456789' })).toEqual({ id: 'by-host', resolved_by: 'host' })
    // principal and role ARN are one kind: the earlier agent wins whichever of the two it matched.
    const principal = [
      agent('p', { aws: ['arn:aws:sts::1:assumed-role/app/s'] }),
      agent('r', { aws: [role.role_arn] }),
    ]
    expect(
      resolve(principal.reverse(), {
        principal_arn: 'arn:aws:sts::1:assumed-role/app/s',
        role_arn: role.role_arn,
      }),
    ).toEqual({ id: 'r', resolved_by: 'registry' })
  })

  it('matches a Kubernetes entry with no keys for every identity, and one with keys only on its fields', () => {
    const agents = [
      agent('pods', { k8s: [{ namespace: 'shop', pod: 'api-*' }] }),
      agent('rest', { k8s: [{}] }),
    ]
    expect(resolve(agents, { k8s_namespace: 'shop', k8s_pod: 'api-7f9c' })).toEqual({
      id: 'pods',
      resolved_by: 'registry',
    })
    expect(resolve(agents, { principal_arn: 'arn:aws:iam::1:user/x' })).toEqual({
      id: 'rest',
      resolved_by: 'registry',
    })
    expect(resolve(agents.slice(0, 1), { principal_arn: 'arn:aws:iam::1:user/x' })).toEqual({
      id: 'arn:aws:iam::1:user/x',
      resolved_by: 'principal',
    })
  })
})
