// The baseline server of the ingest and pipeline benches, run as its own process: node:http reads the body,
// JSON.parse's each line, answers 202 {"accepted":N}. Prints its port on stdout once listening.
import { createServer } from 'node:http'

const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    const lines = Buffer.concat(chunks).toString('utf8').split('\n')
    let n = 0
    for (const l of lines) {
      if (l.length === 0) continue
      JSON.parse(l)
      n++
    }
    res.writeHead(202, { 'content-type': 'application/json' })
    res.end(`{"accepted":${n}}`)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`))
