// What an agent's baseline says about one call, as score reasons with their points. Pure.
// Judged when the correlation forms. When the call arrived before its pair (the edge came second), the
// baseline already holds it: `includesSelf` takes it back out, so a first call is still a first call.
//
//   no history     0   the agent's calls span less than `warmup`: neither routine nor novel (said so)
//   novel action +10   "first time this agent calls X in N days"
//   novel resource +10 "R never touched before by this agent (N days)"
//   unusual hour   +5   no call at this UTC hour in ≥ 2 days of history
//   burst         +10   ≥ burst_min distinct resources of the service in burst_window, half of them new
//                       (judged with or without history: a rate, not a habit)
//   routine       −20   seen ≥ routine_min times in 7 days, on a resource seen before, not denied, not a
//                       burst, and not a critical action (a baseline trained by the attacker never
//                       discounts an IAM change, a logging change, new credentials, a bucket
//                       opened to others or a command pushed to instances: isNeverRoutine)
import type { ScoreReason } from '../schemas/types.ts'
import type { AgentBaseline, BaselineConfig } from './agent-baseline.ts'
import { dayOf, hourOf, resourceKey } from './agent-baseline.ts'
import { callsIamByProxy, isCriticalAction } from './score-correlation.ts'

export type BaselineQuestion = {
  time: number
  action: string
  target: string | undefined
  denied: boolean
  critical: boolean
  includesSelf: boolean
  /** The call's resource key (`resourceKey(action, target)`) when the caller has it already. */
  resource?: string
}

export const baselinePoints = {
  novelAction: 10,
  novelResource: 10,
  unusualHour: 5,
  burst: 10,
  routine: -20,
} as const

const dayMs = 86_400_000
const minuteMs = 60_000

const resourceWords: Record<string, string> = {
  secretsmanager: 'secrets',
  ssm: 'parameters',
  s3: 'buckets',
  iam: 'IAM entities',
  lambda: 'functions',
  kms: 'keys',
  ec2: 'EC2 resources',
  bedrock: 'models',
}

function span(ms: number): string {
  if (ms >= dayMs) return `${Math.floor(ms / dayMs)} days`
  const hours = Math.floor(ms / 3_600_000)
  return hours >= 1 ? `${hours} h` : `${Math.max(1, Math.floor(ms / minuteMs))} min`
}

export function judgeBaseline(
  config: BaselineConfig,
  a: AgentBaseline | undefined,
  q: BaselineQuestion,
): ScoreReason[] {
  const self = q.includesSelf ? 1 : 0
  const key = q.target === undefined ? undefined : (q.resource ?? resourceKey(q.action, q.target))
  const reasons: ScoreReason[] = []
  const burst = burstOf(config, a, q, key)
  const history = a ? Math.min(q.time, a.last) - a.first : 0
  if (!a || a.calls - self <= 0 || history < config.warmup) {
    reasons.push({
      factor: 'baseline_no_history',
      points: 0,
      detail: a
        ? `agent has ${span(Math.max(0, history))} of history (${a.calls - self} calls), under the ${span(config.warmup)} warm-up: neither routine nor novel`
        : 'no history for this agent yet: neither routine nor novel',
    })
    if (burst) reasons.push(burst)
    return reasons
  }
  const days = span(Math.min(history, config.history))
  const stats = a.actions.get(q.action)
  const weekly = stats ? weekCount(stats.days, q.time) - self : 0
  const seenAction = stats !== undefined && (self === 0 || stats.first < q.time || weekly > 0)
  if (!seenAction) {
    reasons.push({
      factor: 'baseline_novel_action',
      points: baselinePoints.novelAction,
      detail: `first time this agent calls ${q.action} in ${days}`,
    })
  }
  const resource = key === undefined ? undefined : a.resources.get(key)
  const novelResource = key !== undefined && (!resource || resource.count - self <= 0)
  if (novelResource) {
    reasons.push({
      factor: 'baseline_novel_resource',
      points: baselinePoints.novelResource,
      detail: `${q.target} never touched before by this agent (${days} of history)`,
    })
  }
  if (history >= 2 * dayMs) {
    const hour = hourOf(q.time)
    if ((a.hours[hour] as number) - self <= 0) {
      reasons.push({
        factor: 'baseline_unusual_hour',
        points: baselinePoints.unusualHour,
        detail: `first call at ${String(hour).padStart(2, '0')}:00 UTC in ${days}`,
      })
    }
  }
  if (burst) reasons.push(burst)
  if (seenAction && !novelResource && !burst && weekly >= config.routine_min) {
    if (q.denied || q.critical) {
      reasons.push({
        factor: 'baseline_routine',
        points: 0,
        detail: `seen ${weekly} times this week, but ${neverRoutineKind(q)} is never discounted as routine`,
      })
    } else {
      reasons.push({
        factor: 'baseline_routine',
        points: baselinePoints.routine,
        detail: `routine: seen ${weekly} times this week${key === undefined ? '' : ', on a resource it uses'}`,
      })
    }
  }
  return reasons
}

/** Calls in the 7 days up to `time` (today included). */
function weekCount(days: readonly [number, number][], time: number): number {
  const today = dayOf(time)
  let count = 0
  for (const [day, n] of days) if (day > today - 7 && day <= today) count += n
  return count
}

function burstOf(
  config: BaselineConfig,
  a: AgentBaseline | undefined,
  q: BaselineQuestion,
  key: string | undefined,
): ScoreReason | undefined {
  if (key === undefined) return undefined
  if (a === undefined) return undefined
  // The agent's recent calls in ring order (agent-baseline.ts): what is counted here does not depend on order.
  const times = a.recentTimes
  const keys = a.recentKeys
  const from = q.time - config.burst_window
  // The distinct resources are at most the call's own and one per recent call in the window: when those
  // are fewer than burst_min, no key is compared or collected (nearly every call judged).
  let inWindow = 0
  for (let i = 0; i < times.length; i++) {
    const time = times[i] as number
    if (time >= from && time <= q.time) inWindow++
  }
  if (inWindow + 1 < config.burst_min) return undefined
  const service = key.slice(0, key.indexOf(':') + 1)
  const distinct = new Set<string>([key])
  for (let i = 0; i < times.length; i++) {
    const time = times[i] as number
    const k = keys[i] as string
    if (time >= from && time <= q.time && k.startsWith(service)) distinct.add(k)
  }
  if (distinct.size < config.burst_min) return undefined
  let fresh = 0
  for (const k of distinct) {
    const r = a.resources.get(k)
    if (!r || r.first >= from) fresh++
  }
  if (fresh * 2 < distinct.size) return undefined
  const word = resourceWords[service.slice(0, -1)] ?? `${service.slice(0, -1)} resources`
  return {
    factor: 'baseline_burst',
    points: baselinePoints.burst,
    detail: `${distinct.size} distinct ${word} in ${span(config.burst_window)}, ${fresh} of them new to this agent`,
  }
}

/** Why a call the baseline has seen often still earns no routine discount, as its reason says. */
const neverRoutineKind = (q: BaselineQuestion) =>
  q.denied
    ? 'a denied call'
    : isCriticalAction(q.action)
      ? 'a critical call'
      : callsIamByProxy(q.target)
        ? 'a schedule calling IAM or STS as its role'
        : 'a call whose harm is in its request (a policy, a command, a script)'
