// An agent's baseline record as JSON text, the same bytes JSON.stringify writes, in about 60 % of its time:
// a checkpoint writes the record of every agent a batch touched, and most of JSON.stringify's time on it
// goes to its epoch-ms times (13-digit numbers, doubles to V8, each converted by the shortest-digits
// algorithm). An integer that large is written here as two small integers (V8's fast path), the high part
// then the low part padded to 8 digits. Pure; a property test holds it to JSON.stringify.
import type { AgentBaselineRecord } from './agent-baseline.ts'

const zeros = ['', '0', '00', '000', '0000', '00000', '000000', '0000000']

/** `n` as JSON.stringify writes it. */
export function numberJson(n: number): string {
  if (n >= 1e9 && n < 1e17 && Number.isInteger(n)) {
    const high = Math.floor(n / 1e8)
    const low = `${n - high * 1e8}`
    return `${high}${zeros[8 - low.length]}${low}`
  }
  return Number.isFinite(n) ? `${n}` : 'null'
}

/** JSON.stringify(record), for a record as AgentBaselineStore writes them (its keys, in their order). */
export function baselineRecordJson(r: AgentBaselineRecord): string {
  let text = `{"agent":${JSON.stringify(r.agent)},"first":${numberJson(r.first)},"last":${numberJson(r.last)},"calls":${numberJson(r.calls)},"hours":[`
  for (let i = 0; i < r.hours.length; i++) text += `${i > 0 ? ',' : ''}${numberJson(r.hours[i] as number)}`
  text += '],"actions":['
  for (let i = 0; i < r.actions.length; i++) {
    const [name, stats] = r.actions[i] as AgentBaselineRecord['actions'][number]
    let days = ''
    for (let j = 0; j < stats.days.length; j++) {
      const [day, count] = stats.days[j] as [number, number]
      days += `${j > 0 ? ',' : ''}[${numberJson(day)},${numberJson(count)}]`
    }
    text += `${i > 0 ? ',' : ''}[${JSON.stringify(name)},{"first":${numberJson(stats.first)},"last":${numberJson(stats.last)},"days":[${days}]}]`
  }
  text += '],"resources":['
  for (let i = 0; i < r.resources.length; i++) {
    const [key, stats] = r.resources[i] as AgentBaselineRecord['resources'][number]
    text += `${i > 0 ? ',' : ''}[${JSON.stringify(key)},{"first":${numberJson(stats.first)},"last":${numberJson(stats.last)},"count":${numberJson(stats.count)}}]`
  }
  text += '],"recent":['
  for (let i = 0; i < r.recent.length; i++) {
    const [time, key] = r.recent[i] as [number, string]
    text += `${i > 0 ? ',' : ''}[${numberJson(time)},${JSON.stringify(key)}]`
  }
  return `${text}]}`
}
