// A loopback stand-in for the two AWS services nerve reads CloudTrail from, speaking their wire protocols so
// the real AWS SDK v3 clients talk to it unchanged (point them at it with AWS_ENDPOINT_URL_SQS / _S3):
// - SQS's JSON protocol: POST / with `X-Amz-Target: AmazonSQS.<Action>` and
//   `Content-Type: application/x-amz-json-1.0`; ReceiveMessage (long polling, visibility timeout, receive
//   count, MD5OfBody as the SDK checks it), DeleteMessage, ChangeMessageVisibility, SendMessage. Errors as
//   the service sends them: 400, `{"__type":"com.amazonaws.sqs#Code","message":…}` and x-amzn-query-error.
// - S3 path-style: GET /bucket/key (bytes as stored) and ListObjectsV2
//   (GET /bucket?list-type=2&prefix=…&continuation-token=…&max-keys=…, XML), NoSuchKey / NoSuchBucket as XML.
// Every request must carry a SigV4 Authorization header (the clients must sign). Loopback only.
import { createHash, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type StandInMessage = {
  messageId: string
  body: string
  sentTimestamp: number
  receiveCount: number
  firstReceiveTimestamp?: number
  visibleAt: number
  receiptHandle?: string
  deleted: boolean
}

export type StandInRequest = { service: 'sqs' | 's3'; action: string; path: string }

export type AwsStandIn = {
  /** http://127.0.0.1:PORT: the value for AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_S3. */
  url: string
  /** Creates a queue and returns its URL (`<url>/000000000000/<name>`). */
  createQueue(name: string): string
  sendMessage(queueUrl: string, body: string, opts?: { sentTimestamp?: number }): string
  /** Every message ever sent to the queue, deleted ones included. */
  messages(queueUrl: string): readonly StandInMessage[]
  /**
   * `chunked`: served without Content-Length, as S3-compatible stores may stream an object. `stall`: a
   * GetObject is never answered (`'request'`), or sends its headers and that many bytes of the body and
   * then nothing more, the connection held open (a stalled or hostile endpoint).
   */
  putObject(
    bucket: string,
    key: string,
    body: Uint8Array | string,
    opts?: { chunked?: boolean; stall?: 'request' | number },
  ): void
  /** The next `count` requests for this action (on this object key only, when given) answer with this error instead. */
  failNext(
    action: string,
    error: { status: number; code: string; message?: string },
    count?: number,
    key?: string,
  ): void
  requests: StandInRequest[]
  close(): Promise<void>
}

const accountId = '000000000000'
const jsonType = 'application/x-amz-json-1.0'

// The query-compatible code (x-amzn-query-error) and status SQS sends per error, from the service model.
const sqsQueryErrors: Record<string, [string, number]> = {
  QueueDoesNotExist: ['AWS.SimpleQueueService.NonExistentQueue', 400],
  ReceiptHandleIsInvalid: ['ReceiptHandleIsInvalid', 404],
  MessageNotInflight: ['AWS.SimpleQueueService.MessageNotInflight', 400],
  UnsupportedOperation: ['AWS.SimpleQueueService.UnsupportedOperation', 400],
}

function sqsError(res: ServerResponse, status: number | undefined, code: string, message: string): void {
  const [queryCode, modelStatus] = sqsQueryErrors[code] ?? [code, 400]
  res.writeHead(status ?? modelStatus, {
    'content-type': jsonType,
    'x-amzn-query-error': `${queryCode};${(status ?? modelStatus) >= 500 ? 'Receiver' : 'Sender'}`,
    'x-amzn-requestid': randomUUID(),
  })
  res.end(JSON.stringify({ __type: `com.amazonaws.sqs#${code}`, message }))
}

function s3Error(res: ServerResponse, status: number, code: string, message: string, extra = ''): void {
  res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': randomUUID() })
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>${randomUUID()}</RequestId></Error>`,
  )
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`)
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export async function startAwsStandIn(): Promise<AwsStandIn> {
  const queues = new Map<string, StandInMessage[]>()
  const waiters = new Map<string, Set<() => void>>()
  const buckets = new Map<string, Map<string, Buffer>>()
  /** "bucket/key" of objects served without Content-Length. */
  const chunked = new Set<string>()
  /** "bucket/key" of objects whose GetObject stalls, and where. */
  const stalls = new Map<string, 'request' | number>()
  const faults = new Map<
    string,
    { status: number; code: string; message?: string; left: number; key: string | undefined }
  >()
  const requests: StandInRequest[] = []
  let url = ''

  const queueName = (queueUrl: unknown): string | undefined => {
    if (typeof queueUrl !== 'string') return undefined
    const name = queueUrl.split('/').pop() ?? ''
    return queues.has(name) ? name : undefined
  }
  const wake = (name: string) => {
    for (const w of waiters.get(name) ?? []) w()
  }
  const takeFault = (action: string, key?: string) => {
    const fault = faults.get(action)
    if (!fault || (fault.key !== undefined && fault.key !== key)) return undefined
    fault.left -= 1
    if (fault.left <= 0) faults.delete(action)
    return fault
  }

  const receive = (name: string, input: Record<string, unknown>) => {
    const max = Math.min(Math.max(Number(input.MaxNumberOfMessages ?? 1), 1), 10)
    const now = Date.now()
    const visibility = Number(input.VisibilityTimeout ?? 30)
    const out: StandInMessage[] = []
    for (const m of queues.get(name) ?? []) {
      if (out.length >= max) break
      if (m.deleted || m.visibleAt > now) continue
      m.receiveCount += 1
      m.firstReceiveTimestamp ??= now
      m.receiptHandle = Buffer.from(`${m.messageId}:${randomUUID()}`).toString('base64')
      m.visibleAt = now + visibility * 1000
      out.push(m)
    }
    return out
  }

  const wantsAttributes = (input: Record<string, unknown>) => {
    const names = [
      ...((input.AttributeNames as string[] | undefined) ?? []),
      ...((input.MessageSystemAttributeNames as string[] | undefined) ?? []),
    ]
    return names
  }

  const messageJson = (m: StandInMessage, names: string[]) => {
    const all = names.includes('All')
    const attributes: Record<string, string> = {}
    const add = (key: string, value: string | undefined) => {
      if (value !== undefined && (all || names.includes(key))) attributes[key] = value
    }
    add('ApproximateReceiveCount', String(m.receiveCount))
    add('SentTimestamp', String(m.sentTimestamp))
    add('ApproximateFirstReceiveTimestamp', m.firstReceiveTimestamp?.toString())
    add('SenderId', 'AIDAEXAMPLESTANDIN')
    return {
      MessageId: m.messageId,
      ReceiptHandle: m.receiptHandle,
      MD5OfBody: createHash('md5').update(m.body).digest('hex'),
      Body: m.body,
      ...(Object.keys(attributes).length > 0 ? { Attributes: attributes } : {}),
    }
  }

  const findByHandle = (name: string, handle: unknown) =>
    (queues.get(name) ?? []).find((m) => !m.deleted && m.receiptHandle === handle)

  async function handleSqs(req: IncomingMessage, res: ServerResponse, target: string): Promise<void> {
    const action = target.replace(/^AmazonSQS\./, '')
    requests.push({ service: 'sqs', action, path: req.url ?? '/' })
    const input = JSON.parse((await readBody(req)).toString('utf8') || '{}') as Record<string, unknown>
    const fault = takeFault(action)
    if (fault) return sqsError(res, fault.status, fault.code, fault.message ?? 'Injected fault.')
    const name = queueName(input.QueueUrl)
    if (!name) return sqsError(res, undefined, 'QueueDoesNotExist', 'The specified queue does not exist.')
    const ok = (body: unknown) => {
      res.writeHead(200, { 'content-type': jsonType, 'x-amzn-requestid': randomUUID() })
      res.end(JSON.stringify(body))
    }
    if (action === 'ReceiveMessage') {
      const waitMs = Math.min(Number(input.WaitTimeSeconds ?? 0), 20) * 1000
      let got = receive(name, input)
      if (got.length === 0 && waitMs > 0) {
        got = await new Promise<StandInMessage[]>((resolve) => {
          const set = waiters.get(name) ?? new Set()
          waiters.set(name, set)
          const done = () => {
            clearTimeout(timer)
            clearInterval(poll)
            set.delete(check)
            resolve(receive(name, input))
          }
          // A message becomes receivable when sent or when its visibility timeout runs out.
          const check = () => {
            const now = Date.now()
            if ((queues.get(name) ?? []).some((m) => !m.deleted && m.visibleAt <= now)) done()
          }
          const timer = setTimeout(done, waitMs)
          const poll = setInterval(check, 50)
          set.add(check)
          req.once('close', () => {
            clearTimeout(timer)
            clearInterval(poll)
            set.delete(check)
          })
        })
      }
      const names = wantsAttributes(input)
      return ok(got.length > 0 ? { Messages: got.map((m) => messageJson(m, names)) } : {})
    }
    if (action === 'DeleteMessage') {
      const m = findByHandle(name, input.ReceiptHandle)
      if (!m)
        return sqsError(res, undefined, 'ReceiptHandleIsInvalid', 'The input receipt handle is invalid.')
      m.deleted = true
      return ok({})
    }
    if (action === 'ChangeMessageVisibility') {
      const m = findByHandle(name, input.ReceiptHandle)
      if (!m)
        return sqsError(res, undefined, 'ReceiptHandleIsInvalid', 'The input receipt handle is invalid.')
      if (m.visibleAt <= Date.now())
        return sqsError(res, undefined, 'MessageNotInflight', 'The message is not in flight.')
      m.visibleAt = Date.now() + Number(input.VisibilityTimeout ?? 0) * 1000
      if (Number(input.VisibilityTimeout ?? 0) === 0) wake(name)
      return ok({})
    }
    if (action === 'SendMessage') {
      const body = String(input.MessageBody ?? '')
      const id = standIn.sendMessage(String(input.QueueUrl), body)
      return ok({ MessageId: id, MD5OfMessageBody: createHash('md5').update(body).digest('hex') })
    }
    return sqsError(res, undefined, 'UnsupportedOperation', `${action} is not served by the stand-in.`)
  }

  function listObjects(res: ServerResponse, bucket: string, query: URLSearchParams) {
    const objects = buckets.get(bucket)
    if (!objects) return s3Error(res, 404, 'NoSuchBucket', 'The specified bucket does not exist.')
    const prefix = query.get('prefix') ?? ''
    const maxKeys = Math.min(Number(query.get('max-keys') ?? 1000) || 1000, 1000)
    const token = query.get('continuation-token')
    const startAfter = token
      ? Buffer.from(token, 'base64').toString('utf8')
      : (query.get('start-after') ?? '')
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > startAfter).sort()
    const page = keys.slice(0, maxKeys)
    const truncated = keys.length > page.length
    const contents = page
      .map((key) => {
        const body = objects.get(key) as Buffer
        const etag = createHash('md5').update(body).digest('hex')
        return `<Contents><Key>${xmlEscape(key)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;${etag}&quot;</ETag><Size>${body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`
      })
      .join('')
    const next = truncated ? Buffer.from(page[page.length - 1] as string).toString('base64') : undefined
    res.writeHead(200, { 'content-type': 'application/xml', 'x-amz-request-id': randomUUID() })
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xmlEscape(bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${token ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : ''}${next ? `<NextContinuationToken>${next}</NextContinuationToken>` : ''}${contents}</ListBucketResult>`,
    )
  }

  async function handleS3(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url ?? '/', 'http://stand-in')
    const [bucketRaw = '', ...keyParts] = parsed.pathname.slice(1).split('/')
    const bucket = decodeURIComponent(bucketRaw)
    const key = keyParts.map((p) => decodeURIComponent(p)).join('/')
    const action = key ? 'GetObject' : 'ListObjectsV2'
    requests.push({ service: 's3', action, path: req.url ?? '/' })
    await readBody(req)
    const fault = takeFault(action, key)
    if (fault) return s3Error(res, fault.status, fault.code, fault.message ?? 'Injected fault.')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return s3Error(res, 405, 'MethodNotAllowed', 'The stand-in serves GET only.')
    }
    if (!key) return listObjects(res, bucket, parsed.searchParams)
    const body = buckets.get(bucket)?.get(key)
    if (!body) {
      return s3Error(
        res,
        404,
        'NoSuchKey',
        'The specified key does not exist.',
        `<Key>${xmlEscape(key)}</Key>`,
      )
    }
    const stall = stalls.get(`${bucket}/${key}`)
    if (stall === 'request') return
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      ...(chunked.has(`${bucket}/${key}`) ? {} : { 'content-length': body.length }),
      etag: `"${createHash('md5').update(body).digest('hex')}"`,
      'last-modified': new Date('2026-01-01T00:00:00Z').toUTCString(),
      'x-amz-request-id': randomUUID(),
    })
    if (stall !== undefined) {
      res.write(body.subarray(0, stall))
      return
    }
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  const server = createServer((req, res) => {
    const auth = req.headers.authorization ?? ''
    const target = req.headers['x-amz-target']
    const work = !auth.startsWith('AWS4-HMAC-SHA256 ')
      ? Promise.resolve(
          typeof target === 'string'
            ? sqsError(res, 403, 'MissingAuthenticationToken', 'Request is not signed.')
            : s3Error(res, 403, 'AccessDenied', 'Request is not signed.'),
        )
      : typeof target === 'string' && req.method === 'POST'
        ? handleSqs(req, res, target)
        : handleS3(req, res)
    work.catch((err: unknown) => {
      if (!res.headersSent) s3Error(res, 500, 'InternalError', String(err))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const standIn: AwsStandIn = {
    url,
    requests,
    createQueue: (name) => {
      if (!queues.has(name)) queues.set(name, [])
      return `${url}/${accountId}/${name}`
    },
    sendMessage: (queueUrl, body, opts = {}) => {
      const name = queueName(queueUrl)
      if (!name) throw new Error(`No queue for ${queueUrl}`)
      const messageId = randomUUID()
      const sentTimestamp = opts.sentTimestamp ?? Date.now()
      queues
        .get(name)
        ?.push({ messageId, body, sentTimestamp, receiveCount: 0, visibleAt: 0, deleted: false })
      wake(name)
      return messageId
    },
    messages: (queueUrl) => queues.get(queueName(queueUrl) ?? '') ?? [],
    putObject: (bucket, key, body, opts = {}) => {
      const objects = buckets.get(bucket) ?? new Map<string, Buffer>()
      buckets.set(bucket, objects)
      objects.set(key, Buffer.from(body))
      if (opts.chunked) chunked.add(`${bucket}/${key}`)
      else chunked.delete(`${bucket}/${key}`)
      if (opts.stall !== undefined) stalls.set(`${bucket}/${key}`, opts.stall)
      else stalls.delete(`${bucket}/${key}`)
    },
    failNext: (action, error, count = 1, key = undefined) => {
      faults.set(action, { ...error, left: count, key })
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return standIn
}
