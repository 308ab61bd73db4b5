// `nerve run` as the end-to-end tests start it: one ingest token, every process stopped after its test (a
// failed test's too, so that none outlives the suite holding its data dir), and a POST with the token.
import { afterEach } from 'vitest'
import { type NerveProcess, startNerve } from '../helpers/nerve-process.ts'

export const token = 'nrv_e2e-token-0123456789abcdef'
/** The pipeline answers in milliseconds; the margin is for a CI machine busy with other suites. */
export const slow = { timeoutMs: 30_000 }

/** Starts `nerve run --config <configFile>` with `env` and the token; each one is stopped after its test. */
export function nerveRunsStoppedAfterEach(): (
  configFile: string,
  env: Record<string, string>,
) => Promise<NerveProcess> {
  const running: NerveProcess[] = []
  afterEach(async () => {
    for (const n of running.splice(0).reverse()) await n.stop()
  })
  return async (configFile, env) => {
    const n = await startNerve(['run', '--config', configFile], { NERVE_INGEST_TOKEN: token, ...env })
    running.push(n)
    return n
  }
}

/** POSTs `body` to `path` with the token. */
export function postWithToken(n: NerveProcess, path: string, body: string): Promise<Response> {
  return fetch(`${n.url}${path}`, { method: 'POST', body, headers: { authorization: `Bearer ${token}` } })
}
