// Deploying workloads hand work to other roles as their job: a CI runner installs packages (Falco's
// "Launch Package Management Process in Container", priority error, on every build) and then starts its
// usual CodeBuild project. runtime-alert-then-delegated-execution must not revoke it for that, build after
// build: the rule records (no revoke unless the operator asks for one), and the baseline discounts the
// runner's routine builds like any other routine call. What routine is not (a first CloudFormation stack,
// a project it never started) still scores high. Records: the fleet's CloudTrail shapes
// (routine-agents.ts, from the Stratus records in tests/fixtures) with the CodeBuild and CloudFormation
// request parameters as those APIs take them; the alert is the Falco website's, with the rule, priority
// and command of a package install.
import { describe, expect, it } from 'vitest'
import { builtinRules } from '../../../correlate/builtin-rules.ts'
import { createReplay } from '../../../correlate/replay-correlations.ts'
import type { Config, Correlation } from '../../../schemas/types.ts'
import { call, debugShell, decode, fleetConfig, roleArn } from './routine-agents.ts'

const ruleId = 'runtime-alert-then-delegated-execution'
const runner = 'ci-runner'
const T0 = Date.UTC(2026, 2, 2, 0, 0)
const hour = 3_600_000

/** The runner's package install at the start of a build: Falco's rule, priority error, in its pod. */
function packageInstall(time: number): Record<string, unknown> {
  const shell = debugShell(runner, time)
  const fields = shell.output_fields as Record<string, unknown>
  return {
    ...shell,
    rule: 'Launch Package Management Process in Container',
    priority: 'Error',
    output: `${new Date(time).toISOString()}: Error Package management process launched in container (user=root command=apt-get install -y jq container_id=f29b261f8831 image=ghcr.io/acme/ci-runner)`,
    output_fields: { ...fields, 'proc.cmdline': 'apt-get install -y jq', 'proc.name': 'apt-get' },
  }
}

const startBuild = (time: number, projectName = 'nightly-deploy') =>
  call(runner, time, 'codebuild:StartBuild', { projectName })

/** A build every hour for a day: the install, then StartBuild of its usual project 30 s later. */
function builds(): Record<string, unknown>[] {
  const items: Record<string, unknown>[] = []
  for (let t = T0; t < T0 + 24 * hour; t += hour) items.push(packageInstall(t), startBuild(t + 30_000))
  return items
}

function run(config: Config, items: readonly Record<string, unknown>[]): Correlation[] {
  const events = decode(config, items).sort((a, b) => a.time - b.time || a.time_ns - b.time_ns)
  const replay = createReplay(config)
  return events.flatMap((e) => replay.push(e).correlations).filter((c) => c.rule.id === ruleId)
}

const revokeGrade = (config: Config) => (c: Correlation) =>
  c.rule.revoke && c.score >= config.revoke.min_score
const routinePoints = (c: Correlation) => c.reasons.find((r) => r.factor === 'baseline_routine')?.points

/** The fleet's registry with the runner, and the pack as given or with the operator's revoking override. */
function runnerConfig(revoke?: boolean): Config {
  const base = fleetConfig()
  const config: Config = {
    ...base,
    agents: [
      ...base.agents,
      {
        id: runner,
        protected: false,
        match: { k8s: [{ namespace: 'agents', pod: `${runner}-*` }], aws: [roleArn(runner)] },
      },
    ],
  }
  if (revoke === undefined) return config
  const rules = builtinRules.map((r) => (r.id === ruleId ? { ...r, revoke } : r))
  return { ...config, correlation: { ...config.correlation, rules } }
}

describe('delegated execution by a workload whose job it is', () => {
  it('never revokes a CI runner for its builds: the rule records them', () => {
    const config = runnerConfig()
    const found = run(config, builds())
    expect(found).toHaveLength(24)
    // The first build, before the runner has any history, scores as high as the rule and alert make it.
    expect(found[0]?.score).toBeGreaterThanOrEqual(config.revoke.min_score)
    expect(found[0]?.rule.revoke).toBe(false)
    expect(found.filter(revokeGrade(config))).toEqual([])
  })

  it('discounts its routine builds, so even a revoking override leaves them under min_score', () => {
    const config = runnerConfig(true)
    const found = run(config, builds())
    // From the build after routine_min (20) earlier StartBuilds of the same project, they are routine.
    const routine = found.slice(config.correlation.baseline.routine_min)
    expect(routine.length).toBeGreaterThanOrEqual(3)
    expect(found.slice(0, config.correlation.baseline.routine_min).map(routinePoints)).not.toContain(-20)
    for (const c of routine) {
      expect(routinePoints(c)).toBe(-20)
      expect(c.score).toBe(58)
      expect(c.reasons.find((r) => r.factor === 'baseline_routine')?.detail).toMatch(
        /^routine: seen \d+ times this week, on a resource it uses$/,
      )
      expect(revokeGrade(config)(c)).toBe(false)
    }
  })

  it('still scores a project the runner never started high, and does not call it routine', () => {
    const config = runnerConfig(true)
    const t = T0 + 24 * hour
    const found = run(config, [...builds(), packageInstall(t), startBuild(t + 30_000, 'prod-admin')])
    const other = found.find((c) => c.core.target === 'prod-admin')
    expect(other?.reasons.map((r) => r.factor)).toContain('baseline_novel_resource')
    expect(other && routinePoints(other)).toBeUndefined()
    expect(other && revokeGrade(config)(other)).toBe(true)
  })

  it('scores a first stack by an agent with history high, and records it without a revoke', () => {
    const config = runnerConfig()
    const t = T0 + 24 * hour
    const stack = call(runner, t + 60_000, 'cloudformation:CreateStack', {
      stackName: 'backup-nightly',
      templateURL: 'https://s3.amazonaws.com/agent-bucket/t.yaml',
      roleARN: 'arn:aws:iam::609418236337:role/cfn-admin',
      capabilities: ['CAPABILITY_NAMED_IAM'],
    })
    const found = run(config, [...builds(), debugShell(runner, t), stack])
    const created = found.find((c) => c.core.action === 'cloudformation:CreateStack')
    expect(created?.reasons.map((r) => r.factor)).toEqual(
      expect.arrayContaining(['baseline_novel_action', 'baseline_novel_resource']),
    )
    expect(created?.score).toBe(88)
    expect(created?.rule.revoke).toBe(false)
  })
})

// The calls a schedule, a rule target or a Batch job hands over: their routine is what they run, not the
// schedule's or the run's name (new every time), so the discount works for them and re-pointing does not.
describe('delegated execution by name-per-run calls', () => {
  const report = `arn:aws:lambda:us-east-1:609418236337:function:nightly-report`
  const universalIam = 'arn:aws:scheduler:::aws-sdk:iam:attachRolePolicy'
  const schedulerRole = 'arn:aws:iam::609418236337:role/scheduler-invoke'

  /** A one-shot schedule of its report function every hour, each with a new name, after the install. */
  function schedules(): Record<string, unknown>[] {
    const items: Record<string, unknown>[] = []
    for (let t = T0; t < T0 + 24 * hour; t += hour) {
      const at = new Date(t + 5 * 60_000).toISOString().slice(0, 19)
      items.push(
        packageInstall(t),
        call(runner, t + 30_000, 'scheduler:CreateSchedule', {
          name: `report-${at.replace(/[-:]/g, '')}`,
          scheduleExpression: `at(${at})`,
          flexibleTimeWindow: { mode: 'OFF' },
          actionAfterCompletion: 'DELETE',
          target: { arn: report, roleArn: schedulerRole, input: '{}' },
        }),
      )
    }
    return items
  }

  it('discounts the schedules of its usual function and calls one pointed at IAM new', () => {
    const config = runnerConfig(true)
    const t = T0 + 24 * hour
    const escalation = call(runner, t + 30_000, 'scheduler:CreateSchedule', {
      name: 'report-late',
      scheduleExpression: 'at(2026-03-03T00:05:00)',
      flexibleTimeWindow: { mode: 'OFF' },
      target: {
        arn: universalIam,
        roleArn: schedulerRole,
        input: '{"RoleName":"agent-ci-runner","PolicyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}',
      },
    })
    const found = run(config, [...schedules(), debugShell(runner, t), escalation])
    const routine = found
      .filter((c) => c.core.target === report)
      .slice(config.correlation.baseline.routine_min)
    expect(routine.length).toBeGreaterThanOrEqual(3)
    for (const c of routine) expect(routinePoints(c)).toBe(-20)
    const iam = found.find((c) => c.core.event_id === escalation.eventID)
    expect(iam?.core.target).toBe(universalIam)
    expect(iam?.reasons.map((r) => r.factor)).toContain('baseline_novel_resource')
    expect(iam && routinePoints(iam)).toBeUndefined()
    expect(iam && revokeGrade(config)(iam)).toBe(true)
  })

  it('never calls a schedule routine that makes IAM calls as its role, however often it is made', () => {
    const config = runnerConfig(true)
    const items: Record<string, unknown>[] = []
    for (let t = T0; t < T0 + 24 * hour; t += hour) {
      const at = new Date(t + 5 * 60_000).toISOString().slice(0, 19)
      items.push(
        packageInstall(t),
        call(runner, t + 30_000, 'scheduler:CreateSchedule', {
          name: `rotate-${at.replace(/[-:]/g, '')}`,
          scheduleExpression: `at(${at})`,
          flexibleTimeWindow: { mode: 'OFF' },
          target: {
            arn: universalIam,
            roleArn: schedulerRole,
            input: '{"RoleName":"agent-ci-runner","PolicyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}',
          },
        }),
      )
    }
    const found = run(config, items)
    expect(found).toHaveLength(24)
    for (const c of found) expect(routinePoints(c) ?? 0).toBe(0)
    const seenOften = found.slice(config.correlation.baseline.routine_min)
    expect(seenOften.length).toBeGreaterThanOrEqual(3)
    for (const c of seenOften) {
      const reason = c.reasons.find((r) => r.factor === 'baseline_routine')
      expect(reason?.detail).toContain('a schedule calling IAM or STS as its role is never discounted')
      expect(revokeGrade(config)(c)).toBe(true)
    }
  })

  it('discounts Batch runs of its usual job definition, whatever each run is named', () => {
    const config = runnerConfig(true)
    const items: Record<string, unknown>[] = []
    for (let t = T0; t < T0 + 24 * hour; t += hour)
      items.push(
        packageInstall(t),
        call(runner, t + 30_000, 'batch:SubmitJob', {
          jobName: `deploy-${t}`,
          jobQueue: 'default',
          jobDefinition: 'nightly-deploy:7',
        }),
      )
    const found = run(config, items)
    expect(found).toHaveLength(24)
    const routine = found.slice(config.correlation.baseline.routine_min)
    expect(routine.length).toBeGreaterThanOrEqual(3)
    for (const c of routine) {
      expect(c.core.target).toBe('nightly-deploy:7')
      expect(routinePoints(c)).toBe(-20)
      expect(revokeGrade(config)(c)).toBe(false)
    }
  })
})
