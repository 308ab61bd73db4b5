// POST /v1/cloudtrail: a CloudTrail record, a log file body {"Records":[…]} (gzip allowed), an EventBridge
// "AWS API Call via CloudTrail" event (API destination), or an array/NDJSON of these. Insights records,
// digest files and file notifications are recognized and skipped with a count.
import type { Route } from '../runtime/http-routes.ts'
import type { HttpConfig } from '../schemas/types.ts'
import { createItemsRoute, type ReceiverDeps } from './receive-items.ts'

export function createCloudTrailReceiver(config: HttpConfig, deps: ReceiverDeps): Route {
  return createItemsRoute(
    { url: '/v1/cloudtrail', component: 'cloudtrail_receiver', kind: 'cloudtrail' },
    config,
    deps,
  )
}
