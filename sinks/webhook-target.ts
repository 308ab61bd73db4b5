// One revoke webhook target: its HTTP(S) agent (optional CA and client certificate per target), its
// signing keys, and a single POST attempt that never follows redirects and never throws: the answer,
// a timeout, a network error, or `aborted` when nerve is shutting down. Its config was checked when it was
// loaded (runtime/config-checks.ts: the secrets, TLS files only on https, a certificate with its key).
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { webhookSecretKey } from '../runtime/webhook-secret.ts'
import { webhookTargetLabel } from '../runtime/webhook-target-label.ts'
import type { WebhookTargetConfig } from '../schemas/types.ts'
import type { AttemptResult } from './revoke-retry.ts'

export type WebhookTarget = {
  /** The URL without credentials or query (it may carry an access_token): safe for logs, metrics, records. */
  label: string
  keys: readonly Buffer[]
  concurrency: number
  post(body: string, headers: Record<string, string>, signal: AbortSignal): Promise<AttemptResult | 'aborted'>
  close(): void
}

export function createWebhookTarget(config: WebhookTargetConfig): WebhookTarget {
  const url = new URL(config.url)
  const keys = [...(config.secret ? [config.secret] : []), ...(config.secrets ?? [])].map(webhookSecretKey)
  const secure = url.protocol === 'https:'
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        ...(config.ca_file ? { ca: readFileSync(config.ca_file) } : {}),
        ...(config.cert_file ? { cert: readFileSync(config.cert_file) } : {}),
        ...(config.key_file ? { key: readFileSync(config.key_file) } : {}),
      })
    : new http.Agent({ keepAlive: true })
  const send = secure ? https.request : http.request

  const post: WebhookTarget['post'] = (body, headers, signal) =>
    new Promise((resolve) => {
      let timedOut = false
      const req = send(url, {
        method: 'POST',
        agent,
        signal,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      })
      const timer = setTimeout(() => {
        timedOut = true
        req.destroy()
      }, config.timeout)
      const done = (result: AttemptResult | 'aborted') => {
        clearTimeout(timer)
        resolve(result)
      }
      req.on('response', (res) => {
        const retryAfter = res.headers['retry-after']
        res.resume()
        res.on('end', () => done({ status: res.statusCode ?? 0, ...(retryAfter ? { retryAfter } : {}) }))
        res.on('error', () => done(signal.aborted ? 'aborted' : { error: 'network_error' }))
      })
      req.on('error', () => {
        if (signal.aborted) done('aborted')
        else done({ error: timedOut ? 'timeout' : 'network_error' })
      })
      req.on('close', () => {
        if (timedOut) done({ error: 'timeout' })
      })
      req.end(body)
    })

  return {
    label: webhookTargetLabel(url),
    keys,
    concurrency: config.concurrency,
    post,
    close: () => agent.destroy(),
  }
}
