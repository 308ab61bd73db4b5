// `nerve setup kibana`: imports the saved objects shipped in dashboards/*.ndjson (data views per data stream,
// the "Edge to core" dashboard) through Kibana's import API, overwriting objects with the same stable ids:
//   POST /api/saved_objects/_import?overwrite=true (or /s/<space>/api/…), multipart field `file`, kbn-xsrf.
// Kibana answers 200 even when some objects fail, so `success` and `errors` are checked (sinks.md §3.2).
// Credentials and CA are Elasticsearch's (an API key or a user that also works for Kibana).
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { basename, join, resolve } from 'node:path'
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Config } from '../schemas/types.ts'

export type SetupKibanaDeps = { log: Logger; dashboardsDir?: string }

type ImportResponse = {
  success?: boolean
  successCount?: number
  errors?: { id: string; type: string; error?: { type?: string; message?: string } }[]
}

const defaultDashboardsDir = resolve(import.meta.dirname, '../dashboards')
const timeoutMs = 30_000

/** Imports every dashboards/*.ndjson file; returns how many objects Kibana took, per file. */
export async function setupKibana(
  config: Pick<Config['sinks'], 'elasticsearch' | 'kibana'>,
  deps: SetupKibanaDeps,
): Promise<{ imported: { file: string; objects: number }[] }> {
  const base = config.kibana.url
  if (!base) {
    throw new NerveError('CONFIG_INVALID', 'sinks.kibana.url is not set (config file or NERVE_KIBANA_URL).')
  }
  const dir = deps.dashboardsDir ?? defaultDashboardsDir
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ndjson'))
    .sort()
  const space = config.kibana.space ? `/s/${encodeURIComponent(config.kibana.space)}` : ''
  const url = new URL(`${base.replace(/\/$/, '')}${space}/api/saved_objects/_import?overwrite=true`)
  const imported: { file: string; objects: number }[] = []
  for (const file of files) {
    const path = join(dir, file)
    const response = await importFile(url, path, config.elasticsearch)
    imported.push({ file, objects: response.successCount ?? 0 })
    deps.log.info({ file, objects: response.successCount }, 'Imported Kibana saved objects.')
  }
  return { imported }
}

async function importFile(
  url: URL,
  path: string,
  auth: Config['sinks']['elasticsearch'],
): Promise<ImportResponse> {
  const boundary = `nerve-${randomBytes(12).toString('hex')}`
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${basename(path)}"\r\n` +
        'Content-Type: application/ndjson\r\n\r\n',
    ),
    readFileSync(path),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ])
  const headers: Record<string, string> = {
    'kbn-xsrf': 'true',
    'content-type': `multipart/form-data; boundary=${boundary}`,
    'content-length': String(body.length),
  }
  if (auth.api_key) headers.authorization = `ApiKey ${auth.api_key}`
  else if (auth.username) {
    const credentials = Buffer.from(`${auth.username}:${auth.password ?? ''}`)
    headers.authorization = `Basic ${credentials.toString('base64')}`
  }
  const ca = auth.ca_file ? readFileSync(auth.ca_file) : undefined
  const { status, text } = await post(url, headers, body, ca)
  const what = `Kibana import of ${basename(path)}`
  if (status !== 200) {
    const retriable = status === 429 || status >= 500
    throw new NerveError(
      retriable ? 'SINK_UNAVAILABLE' : 'SINK_REJECTED',
      `${what}: HTTP ${status}: ${text}`,
      {
        retriable,
      },
    )
  }
  const response = parseImportResponse(text, what)
  if (response.success !== true || (response.errors ?? []).length > 0) {
    const problems = (response.errors ?? []).map(
      (e) =>
        `${e.type}/${e.id}: ${e.error?.type ?? 'error'}${e.error?.message ? ` (${e.error.message})` : ''}`,
    )
    throw new NerveError('SINK_REJECTED', `${what} failed: ${problems.join('; ') || text}`, {
      details: response.errors,
    })
  }
  return response
}

function parseImportResponse(text: string, what: string): ImportResponse {
  try {
    return JSON.parse(text) as ImportResponse
  } catch (cause) {
    throw new NerveError('SINK_REJECTED', `${what}: the answer is not JSON: ${text.slice(0, 200)}`, { cause })
  }
}

function post(
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
  ca: Buffer | undefined,
): Promise<{ status: number; text: string }> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolvePromise, reject) => {
    const req = send(url, { method: 'POST', headers, ca, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolvePromise({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      )
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (cause) =>
      reject(
        new NerveError('SINK_UNAVAILABLE', `Cannot reach Kibana at ${url.origin}: ${cause.message}`, {
          cause,
          retriable: true,
        }),
      ),
    )
    req.end(body)
  })
}
