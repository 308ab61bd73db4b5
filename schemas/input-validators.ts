// Compiled validators for the ingest inputs and the normalized event, on the one Ajv instance of
// validators.ts. Each gives a type guard; `problemsOf` turns its errors into {path, message} with the
// few messages a raw regex would make unreadable said in words.
import type { ValidateFunction } from 'ajv'
import type { NormalizedEvent } from './types.ts'
import { compileSchema, formatValidationErrors, type ValidationProblem } from './validators.ts'

/** A Falco alert as Falco or Falcosidekick writes it (schemas/falco-alert.schema.json). */
export type FalcoAlert = {
  time: string
  rule: string
  priority: string
  source?: string
  hostname?: string
  output?: string
  message?: string
  tags?: string[]
  output_fields?: Record<string, unknown>
  uuid?: string
}

export type CloudTrailUserIdentity = {
  type?: string
  principalId?: string
  arn?: string
  accountId?: string
  accessKeyId?: string
  userName?: string
  invokedBy?: string
  sessionContext?: {
    sessionIssuer?: { type?: string; arn?: string }
    attributes?: Record<string, unknown>
    [key: string]: unknown
  }
  [key: string]: unknown
}

/** A CloudTrail record (schemas/cloudtrail-record.schema.json). */
export type CloudTrailRecord = {
  eventTime: string
  eventSource: string
  eventName: string
  eventVersion?: string
  eventID?: string
  eventType?: string
  awsRegion?: string
  sourceIPAddress?: string
  userAgent?: string
  errorCode?: string
  errorMessage?: string
  readOnly?: boolean | string
  recipientAccountId?: string
  requestParameters?: Record<string, unknown> | null
  responseElements?: Record<string, unknown> | null
  resources?: { ARN?: string; [key: string]: unknown }[]
  userIdentity?: CloudTrailUserIdentity
  [key: string]: unknown
}

export type EventBridgeCloudTrailEvent = {
  'detail-type': string
  source: string
  detail: Record<string, unknown>
  id?: string
  account?: string
  region?: string
  time?: string
}

export type FirehoseDeliveryRequest = {
  requestId: string
  timestamp?: number
  records: { data: string }[]
}

export const validateFalcoAlert: ValidateFunction<FalcoAlert> = compileSchema('falco-alert.schema.json')
export const validateCloudTrailRecord: ValidateFunction<CloudTrailRecord> = compileSchema(
  'cloudtrail-record.schema.json',
)
export const validateEventBridgeEvent: ValidateFunction<EventBridgeCloudTrailEvent> = compileSchema(
  'eventbridge-cloudtrail-event.schema.json',
)
export const validateFirehoseRequest: ValidateFunction<FirehoseDeliveryRequest> = compileSchema(
  'firehose-delivery-request.schema.json',
)
export const validateNormalizedEvent: ValidateFunction<NormalizedEvent> = compileSchema(
  'normalized-event.schema.json',
)

const timeMessage = 'must be an RFC 3339 time such as 2024-05-07T18:54:19.341081180Z'
const readableMessages: Record<string, string> = {
  '#/properties/time/pattern': timeMessage,
  '#/properties/eventTime/pattern': 'must be an ISO 8601 UTC time such as 2024-04-16T09:20:04Z',
  '#/properties/priority/pattern':
    'must be a Falco priority name: Emergency, Alert, Critical, Error, Warning, Notice, Informational or Debug',
  '#/properties/records/items/properties/data/pattern': 'must be base64',
}

/** The errors of the last call of `validate`, as {path, message}, with hints for case-mismatched keys. */
export function problemsOf(validate: ValidateFunction, value: unknown): ValidationProblem[] {
  const errors = (validate.errors ?? []).map((e) => {
    const readable = readableMessages[e.schemaPath]
    return readable ? { ...e, keyword: 'readable', message: readable } : e
  })
  return formatValidationErrors(errors).map((p) => withCaseHint(p, value))
}

/** `missing required key "rule"` on an object that has `Rule`: say so (Go decoders accept it, JSON does not). */
function withCaseHint(problem: ValidationProblem, value: unknown): ValidationProblem {
  const missing = /^missing required key "(.+)"$/.exec(problem.message)?.[1]
  if (!missing) return problem
  const target = resolvePointer(value, problem.path)
  if (typeof target !== 'object' || target === null) return problem
  const variant = Object.keys(target).find((k) => k !== missing && k.toLowerCase() === missing.toLowerCase())
  if (!variant) return problem
  return { ...problem, message: `${problem.message} (found "${variant}": keys are case-sensitive)` }
}

function resolvePointer(value: unknown, pointer: string): unknown {
  if (pointer === '/' || pointer === '') return value
  let node = value
  for (const part of pointer.slice(1).split('/')) {
    if (typeof node !== 'object' || node === null) return undefined
    node = (node as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')]
  }
  return node
}
