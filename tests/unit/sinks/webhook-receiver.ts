// A real HTTP receiver on 127.0.0.1 for the revoke dispatcher's tests: records every request (headers and
// exact body bytes) and answers as the test says.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export type ReceivedRequest = { headers: IncomingHttpHeaders; body: string }
export type Answer = { status: number; headers?: Record<string, string> }

export type WebhookReceiver = {
  url: string
  requests: ReceivedRequest[]
  close(): Promise<void>
}

export async function startWebhookReceiver(
  answer: (req: ReceivedRequest, index: number) => Answer = () => ({ status: 204 }),
): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }
      const { status, headers } = answer(received, requests.length)
      requests.push(received)
      res.writeHead(status, headers).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/revoke`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
