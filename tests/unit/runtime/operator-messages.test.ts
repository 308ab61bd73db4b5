// The small pure pieces behind the CLI's messages: "did you mean", one-line start-up failures, durations
// written back for humans, extra_rules adding to the pack, and the warning for revokes without a target.
import { describe, expect, it } from 'vitest'
import { builtinRules } from '../../../correlate/builtin-rules.ts'
import { correlatorConfigOf } from '../../../correlate/correlator-config.ts'
import { closest, suggestKey } from '../../../runtime/did-you-mean.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { startupFailureLine } from '../../../runtime/startup-failure.ts'
import { formatDuration, parseDuration } from '../../../schemas/duration.ts'
import { revokeTargetWarning } from '../../../sinks/revoke-target-check.ts'

describe('did you mean', () => {
  it('suggests the nearest allowed key at the same place, and nothing for a word far from all', () => {
    expect(closest('windw', ['window', 'rules', 'extra_rules'])).toBe('window')
    expect(closest('extra-rules', ['window', 'rules', 'extra_rules'])).toBe('extra_rules')
    expect(closest('zzzzzz', ['window', 'rules'])).toBeUndefined()
    expect(suggestKey('/revoke', 'dryrun')).toBe('dry_run')
    expect(suggestKey('/correlation/rules/0/edge', 'rule')).toBe('rules')
    expect(suggestKey('', 'agnets')).toBe('agents')
  })
})

describe('start-up failures', () => {
  const systemError = (fields: Record<string, unknown>) => Object.assign(new Error('raw'), fields)
  it('turns system errors into one line and leaves real bugs alone', () => {
    expect(
      startupFailureLine(systemError({ code: 'EADDRINUSE', syscall: 'listen', address: '::', port: 80 })),
    ).toMatch(/^cannot listen on :::80: the port is already in use/)
    expect(startupFailureLine(systemError({ code: 'ENOENT', path: '/x.ndjson' }))).toBe(
      '/x.ndjson: no such file or directory.',
    )
    expect(startupFailureLine(systemError({ code: 'EISDIR', path: '/tmp' }))).toBe(
      '/tmp is a directory, not a file.',
    )
    expect(startupFailureLine(new TypeError('undefined is not a function'))).toBeUndefined()
  })
})

describe('durations for humans', () => {
  it('writes the largest exact unit, and parses back to the same milliseconds', () => {
    for (const ms of [0, 1500, 90_000, 120_000, 1_200_000, 3_600_000, 86_400_000, 90_061_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms)
    }
    expect([90_000, 1_200_000, 86_400_000, 1500].map(formatDuration)).toEqual(['90s', '20m', '1d', '1500ms'])
  })
})

describe('correlation.extra_rules', () => {
  const extra = {
    id: 'metadata-then-secrets',
    edge: { rules: ['Contact EC2 Instance Metadata Service From Container'] },
    core: { actions: ['secretsmanager:GetSecretValue'] },
    severity: 70,
    revoke: false,
  }
  it('adds to the built-in pack instead of replacing it', () => {
    const config = loadConfig({ env: {} })
    const withExtra = { ...config, correlation: { ...config.correlation, extra_rules: [extra] } }
    const ids = correlatorConfigOf(withExtra).rules.map((r) => r.id)
    expect(ids).toEqual([...builtinRules.map((r) => r.id), 'metadata-then-secrets'])
  })
  it('is validated with the pack: a duplicate of a built-in id is refused', () => {
    const config = loadConfig({ env: {} })
    const clash = { ...extra, id: builtinRules[0]?.id as string }
    const withClash = { ...config, correlation: { ...config.correlation, extra_rules: [clash] } }
    expect(() => correlatorConfigOf(withClash)).toThrow(/duplicate rule id/)
  })
})

describe('revoke rules without a target', () => {
  const revoke = loadConfig({ env: {} }).revoke
  it('warns, naming the revoking rules, unless a target is set or decisions are dry runs', () => {
    const warning = revokeTargetWarning(revoke, builtinRules)
    expect(warning?.rules.length).toBeGreaterThan(0)
    expect(warning?.message).toContain('every revoke will be suppressed')
    expect(revokeTargetWarning({ ...revoke, dry_run: true }, builtinRules)).toBeUndefined()
    const target = { ...revoke, webhooks: [{ url: 'https://hooks.example/revoke' }] } as typeof revoke
    expect(revokeTargetWarning(target, builtinRules)).toBeUndefined()
    expect(revokeTargetWarning(revoke, [{ id: 'watch-only', revoke: false }])).toBeUndefined()
  })
})
