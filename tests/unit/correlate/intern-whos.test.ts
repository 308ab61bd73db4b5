// The who interner keeps an agent's recent identities: the same identity gets the same who, and an agent
// whose every call names a new session keeps its latest 16, oldest dropped first.
import { describe, expect, it } from 'vitest'
import { AgentWindow } from '../../../correlate/entry-slots.ts'
import { createWhoInterner } from '../../../correlate/intern-whos.ts'
import type { IdentityFields } from '../../../schemas/types.ts'

/** A role's call as CloudTrail names it: each SDK session its own ARN and temporary key. */
const session = (n: number): IdentityFields =>
  JSON.parse(
    JSON.stringify({
      principal_arn: `arn:aws:sts::123456789012:assumed-role/svc-303/botocore-session-${n}`,
      role_arn: 'arn:aws:iam::123456789012:role/svc-303',
      access_key_id: `ASIA4QEXAMPLE${String(n).padStart(7, '0')}`,
      session_name: `botocore-session-${n}`,
      account_id: '123456789012',
    }),
  ) as IdentityFields

describe('createWhoInterner', () => {
  it('gives the same who to the same identity, and keeps the latest 16 of an agent with a new session per call', () => {
    const who = createWhoInterner()
    const w = new AgentWindow('svc-303')
    const whos = Array.from({ length: 40 }, (_, n) => who(w, 'principal', session(n)))
    expect(new Set(whos).size).toBe(40)
    // The latest 16 are still known: the same objects, whatever the order asked.
    for (let n = 39; n >= 24; n--) expect(who(w, 'principal', session(n))).toBe(whos[n])
    expect(w.whos).toEqual(whos.slice(24))
    // An older one is a new who (and pushes out the oldest kept).
    const again = who(w, 'principal', session(23))
    expect(again).not.toBe(whos[23])
    expect(again.identity).toEqual(session(23))
    expect(w.whos).toEqual([...whos.slice(25), again])
  })
})
