// POST /v1/falco: Falcosidekick's webhook output (bearer token in webhook.customheaders) and Falco's own
// http_output (?token=, or mTLS): one alert, a JSON array or NDJSON of them. Neither sender retries, so
// while the bus is busy requests are spooled to disk (falco-spool.ts) rather than refused.
import type { Route } from '../runtime/http-routes.ts'
import type { HttpConfig } from '../schemas/types.ts'
import type { FalcoSpool } from './falco-spool.ts'
import type { FoldOverBudget } from './fold-over-budget.ts'
import { createItemsRoute, type ReceiverDeps } from './receive-items.ts'

export function createFalcoReceiver(
  config: HttpConfig,
  deps: ReceiverDeps & { spool?: FalcoSpool; budget?: FoldOverBudget },
): Route {
  return createItemsRoute(
    {
      url: '/v1/falco',
      component: 'falco_receiver',
      kind: 'falco',
      plainTextHint: 'Falco sends text unless json_output: true is set in falco.yaml.',
      ...(deps.spool ? { spool: deps.spool } : {}),
      ...(deps.budget ? { budget: deps.budget } : {}),
    },
    config,
    deps,
  )
}
