// The load of the healthz-stall bench, in its own process: posts the given NDJSON files at once, each on
// its own connection, and prints their statuses as JSON when every answer is in.
// Usage: node large-body-poster.mjs URL TOKEN FILE… (POSTER_CONTENT_TYPE: the bodies' type, NDJSON unless set)
import { readFileSync } from 'node:fs'
import { request } from 'node:http'

const [url, token, ...files] = process.argv.slice(2)
const post = (body) =>
  new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': process.env.POSTER_CONTENT_TYPE ?? 'application/x-ndjson',
          'content-length': body.length,
        },
      },
      (res) => {
        res.resume()
        res.once('end', () => resolve(res.statusCode))
      },
    )
    req.once('error', reject)
    req.end(body)
  })
const bodies = files.map((file) => readFileSync(file))
process.stdout.write(JSON.stringify(await Promise.all(bodies.map(post))))
