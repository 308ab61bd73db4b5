// One load-generating process of the pipeline bench (forked, so the load is outside the measured process).
// It prepares its NDJSON bodies, says 'ready', and on 'go' posts them one at a time over a keep-alive
// connection: client c of n takes the rounds r of [first, rounds) with r % n === c, in order, as batches of
// `batch` Falco alerts to /v1/falco and then their IAM writes and noise as batches of `batch` records to /v1/cloudtrail.
// Reports 'done' with the number of events the server accepted and how many POSTs it refused for back-pressure.
import { Agent, request } from 'node:http'
import { cloudTrailRecord, falcoAlert } from './pipeline-events.ts'

const [base, token, client, clients, rounds, t0, batch, first = '0'] = process.argv.slice(2) as string[]
const n = Number(clients)
const size = Number(batch)

const mine: number[] = []
for (let r = Number(first) + Number(client); r < Number(rounds); r += n) mine.push(r)
const bodies: { path: string; body: Buffer }[] = []
for (let i = 0; i < mine.length; i += size) {
  const part = mine.slice(i, i + size)
  bodies.push({ path: '/v1/falco', body: Buffer.from(part.map((r) => falcoAlert(r, Number(t0))).join('\n')) })
  const records = part.flatMap((r) => [
    cloudTrailRecord(r, Number(t0), true),
    cloudTrailRecord(r, Number(t0), false),
  ])
  for (let j = 0; j < records.length; j += size) {
    bodies.push({ path: '/v1/cloudtrail', body: Buffer.from(records.slice(j, j + size).join('\n')) })
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 })
const post = (path: string, body: Buffer) =>
  new Promise<number>((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        agent,
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/x-ndjson',
          'content-length': body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.once('end', () => {
          if (res.statusCode !== 202) {
            reject(new Error(`POST ${path} answered ${res.statusCode}: ${Buffer.concat(chunks)}`))
            return
          }
          resolve((JSON.parse(Buffer.concat(chunks).toString()) as { accepted: number }).accepted)
        })
      },
    )
    req.once('error', reject)
    req.end(body)
  })

process.once('message', async () => {
  let accepted = 0
  let refused = 0
  for (const { path, body } of bodies) {
    // A saturated nerve answers 429/503 with Retry-After: this client then waits and sends again.
    for (;;) {
      try {
        accepted += await post(path, body)
        break
      } catch (err) {
        if (!/answered (429|503)/.test(String(err))) throw err
        refused++
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }
  agent.destroy()
  process.send?.({ accepted, refused })
})
process.send?.('ready')
