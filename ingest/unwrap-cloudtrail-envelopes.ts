// Every way a CloudTrail record reaches nerve, unwrapped to the records themselves: a bare record, a log
// file `{"Records":[…]}`, an EventBridge event, a CloudWatch Logs subscription payload. Things that are
// not records are recognized and skipped with a count, never rejected: Insights records, digest files,
// CloudWatch Logs control messages, and file notifications (SNS/SQS/S3 events pointing at a log file,
// which nerve does not fetch).

import { problemsOf, validateEventBridgeEvent } from '../schemas/input-validators.ts'
import type { Via } from '../schemas/types.ts'
import type { ValidationProblem } from '../schemas/validators.ts'
import { depthOf } from './json-text.ts'
import { isInsightRecord } from './normalize-cloudtrail-record.ts'
import { parseJson } from './split-json-items.ts'

export type SkipReason = 'insight' | 'digest' | 'control_message' | 'file_notification'

/**
 * One record to validate: where it sits in the request (item index + JSON path) and how it came. `text`:
 * the text JSON.parse read to make `value`, when the record is the item itself (JsonItem.text).
 */
export type Candidate = {
  index: number
  path: string
  value: unknown
  via: Via
  original(): string
  text?: string
}

export type Unwrapped = {
  records: Candidate[]
  skipped: SkipReason[]
  invalid: { index: number; path: string; problems: ValidationProblem[]; original(): string }[]
}

type Item = { index: number; value: unknown; original(): string; text?: string; recordsFrom?: number }

/** `maxDepth`: the deepest a record parsed from a CloudWatch Logs message may nest (unlimited when absent). */
export function unwrapCloudTrailItem(
  item: Item,
  via: Via | undefined,
  out: Unwrapped,
  maxDepth = Number.POSITIVE_INFINITY,
): void {
  const value = item.value
  if (!isObject(value)) {
    out.invalid.push({ ...where(item, ''), problems: [{ path: '/', message: 'must be a JSON object' }] })
    return
  }
  if (Array.isArray(value.Records)) {
    if (value.Records.some((r) => isObject(r) && r.eventSource === 'aws:s3'))
      out.skipped.push('file_notification')
    else {
      const from = item.recordsFrom ?? 0
      value.Records.forEach((record, i) => {
        if (isObject(record) && isInsightRecord(record)) out.skipped.push('insight')
        else out.records.push(candidate(item, via, `/Records/${from + i}`, record, 'cloudtrail_log_file'))
      })
    }
    return
  }
  if ('detail-type' in value) {
    unwrapEventBridge(item, value, via, out)
    return
  }
  if (typeof value.messageType === 'string') {
    unwrapLogsPayload(item, value, via, out, maxDepth)
    return
  }
  if ('digestStartTime' in value || ('logFiles' in value && 'awsAccountId' in value)) {
    out.skipped.push('digest')
    return
  }
  if (isFileNotification(value)) {
    out.skipped.push('file_notification')
    return
  }
  if (isInsightRecord(value)) {
    out.skipped.push('insight')
    return
  }
  out.records.push(candidate(item, via, '', value, 'cloudtrail_record'))
}

function unwrapEventBridge(
  item: Item,
  value: Record<string, unknown>,
  via: Via | undefined,
  out: Unwrapped,
): void {
  if (!validateEventBridgeEvent(value)) {
    out.invalid.push({ ...where(item, ''), problems: problemsOf(validateEventBridgeEvent, value) })
    return
  }
  if (value['detail-type'] === 'AWS Insight via CloudTrail' || isInsightRecord(value.detail)) {
    out.skipped.push('insight')
    return
  }
  out.records.push(candidate(item, via, '/detail', value.detail, 'eventbridge'))
}

/** A CloudWatch Logs subscription payload: each log event's message is one record as a JSON string. */
function unwrapLogsPayload(
  item: Item,
  value: Record<string, unknown>,
  via: Via | undefined,
  out: Unwrapped,
  maxDepth: number,
) {
  if (value.messageType === 'CONTROL_MESSAGE') {
    out.skipped.push('control_message')
    return
  }
  if (value.messageType !== 'DATA_MESSAGE' || !Array.isArray(value.logEvents)) {
    const problem = {
      path: '/messageType',
      message: 'must be DATA_MESSAGE or CONTROL_MESSAGE with logEvents',
    }
    out.invalid.push({ ...where(item, ''), problems: [problem] })
    return
  }
  value.logEvents.forEach((logEvent, i) => {
    const path = `/logEvents/${i}/message`
    const message = isObject(logEvent) ? logEvent.message : undefined
    if (typeof message !== 'string') {
      out.invalid.push({ ...where(item, path), problems: [{ path: '/', message: 'must be a string' }] })
      return
    }
    let record: unknown
    try {
      record = parseJson(message)
    } catch (err) {
      const problem = { path: '/', message: `not valid JSON: ${(err as Error).message}` }
      out.invalid.push({ index: item.index, path, problems: [problem], original: () => message })
      return
    }
    // Parsed apart from the body, so the body's depth check never saw it: checked here, before anything
    // walks it (a record without an eventID is hashed recursively).
    if (depthOf(record, maxDepth) > maxDepth) {
      const problem = { path: '/', message: `nested deeper than ${maxDepth} levels` }
      out.invalid.push({ index: item.index, path, problems: [problem], original: () => message })
      return
    }
    if (isObject(record) && isInsightRecord(record)) out.skipped.push('insight')
    else
      out.records.push({
        index: item.index,
        path,
        value: record,
        via: via ?? 'firehose',
        original: () => message,
      })
  })
}

function isFileNotification(value: Record<string, unknown>): boolean {
  if (value.Type === 'Notification' && typeof value.Message === 'string') return true
  if ('s3ObjectKey' in value && 's3Bucket' in value) return true
  return value.Event === 's3:TestEvent'
}

/**
 * A module-level function, not an arrow bound to a name inside unwrapCloudTrailItem: tsx keeps function
 * names, which defines the `name` property of every such arrow as it is made (a defineProperty per record).
 */
function candidate(item: Item, via: Via | undefined, path: string, value: unknown, how: Via): Candidate {
  return {
    index: item.index,
    path,
    value,
    via: via ?? how,
    original: path === '' ? item.original : () => JSON.stringify(value),
    text: path === '' ? item.text : undefined,
  }
}

function where(item: Item, path: string) {
  return { index: item.index, path, original: item.original }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
