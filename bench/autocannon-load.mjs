// The load generator of the ingest bench, run as its own process so that it never shares a core's event
// loop with the server it measures: autocannon's API (its CLI's -I id replacement miscounts Content-Length
// in this version), keep-alive connections, the body read from a file. When the body holds `{{n}}`, each
// request replaces it with a fresh number, so that no two alerts are the same event. Prints autocannon's
// result as JSON, with `generator`: this process's CPU µs and the wall ms of the load alone (its start
// left out), so a bench can show whether the generator, rather than the server, was the one saturated.
// Usage: node autocannon-load.mjs URL BODY_FILE CONNECTIONS SECONDS TOKEN
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

const [url, file, connections, seconds, token] = process.argv.slice(2)
const template = readFileSync(file, 'utf8')
const fresh = template.includes('{{n}}')
let n = 0
const cpuBefore = process.cpuUsage()
const wallBefore = performance.now()
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: template,
  requests: fresh
    ? [{ setupRequest: (req) => ({ ...req, body: template.replaceAll('{{n}}', String(n++)) }) }]
    : undefined,
})
const cpu = process.cpuUsage(cpuBefore)
const generator = { cpuUs: cpu.user + cpu.system, wallMs: performance.now() - wallBefore }
process.stdout.write(JSON.stringify({ ...result, generator }))
