// The real pair the end-to-end tests send: a "Terminal shell in container" alert in pod default/alpine at
// 2021-04-10T19:27:21.002873265Z (falco-website.ndjson), then role "tester" attaching AdministratorAccess
// (panther-analysis-rule-tests.ndjson) with its eventTime moved to 90 s after the shell, so both fall in
// one window; the record is otherwise unchanged.
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const fixtures = resolve(import.meta.dirname, '../fixtures')
const lines = (file: string) => readFileSync(join(fixtures, file), 'utf8').split('\n').filter(Boolean)

export const falcoAlert = lines('falco/falco-website.ndjson').find((l) =>
  l.includes('"time":"2021-04-10T19:27:21'),
) as string

const original = lines('cloudtrail/panther-analysis-rule-tests.ndjson')
  .map((l) => JSON.parse(l))
  .find(
    (r) =>
      r.eventName === 'AttachRolePolicy' && r.requestParameters?.policyArn?.endsWith('AdministratorAccess'),
  )

export const attachRecord = { ...original, eventTime: '2021-04-10T19:28:51Z' }

/** The record as a CloudTrail log file body. */
export const attachLogFile = JSON.stringify({ Records: [attachRecord] })
