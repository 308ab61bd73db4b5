// Which kind an item of `nerve replay` is, detected per item: a Falco alert, CloudTrail (a record, a log
// file, an EventBridge event, a CloudWatch Logs payload, an envelope skipped with a count), or neither,
// which is rejected as such rather than reported as a CloudTrail record missing its keys. Pure.

/** Falco alerts have a priority and a rule (or its capitalised Go-decoder variant); CloudTrail never does. */
function looksLikeFalco(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && 'priority' in value && ('rule' in value || 'Rule' in value)
  )
}

/**
 * Keys only CloudTrail's records and envelopes have at their top (unwrap-cloudtrail-envelopes.ts), the
 * ones every record has first, so that a record is told by its first look-up.
 */
const cloudTrailKeys = [
  'eventTime',
  'eventSource',
  'eventName',
  'eventVersion',
  'eventID',
  'userIdentity',
  'Records',
  'detail-type',
  'messageType',
  'digestStartTime',
  'logFiles',
  's3ObjectKey',
  'Type',
  'Event',
]
/** Keys of a Falco alert that no CloudTrail item has at its top: an alert missing another of them. */
const falcoKeys = ['priority', 'rule', 'Rule', 'output', 'output_fields']

/** The message of an item that is neither. */
export const neitherKind =
  'is neither a Falco alert nor a CloudTrail record, log file or event (it has none of their keys: priority' +
  ' and rule; eventTime, eventSource and eventName; Records; detail-type; messageType)'

/**
 * An item's kind: `falco` for an alert (or an object with a Falco key and none of CloudTrail's, so that its
 * problems are an alert's), `cloudtrail` for CloudTrail and for anything not an object (rejected there as
 * such), `neither` for an object with none of either's keys.
 */
export function itemKindOf(value: unknown): 'falco' | 'cloudtrail' | 'neither' {
  if (looksLikeFalco(value)) return 'falco'
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'cloudtrail'
  for (const key of cloudTrailKeys) if (key in value) return 'cloudtrail'
  for (const key of falcoKeys) if (key in value) return 'falco'
  return 'neither'
}
