// A revoke webhook target's label: its URL without credentials or query (either may carry a token). Logs,
// metrics and outcome records show it, and the revoke outbox remembers a target a 410 disabled by it, so no
// two targets may share one (config-checks.ts). Pure.

/** `https://user:pw@Hooks.example:443/revoke?access_token=…` → `https://hooks.example/revoke`. */
export function webhookTargetLabel(url: URL): string {
  return `${url.origin}${url.pathname}`
}
