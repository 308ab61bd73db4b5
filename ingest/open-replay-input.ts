// Opens what `nerve replay` reads: a local path, or an s3:// object through an S3 client made on first
// use (each decoding thread makes its own from the environment it is handed).
import type { Readable } from 'node:stream'
import type { S3Client } from '@aws-sdk/client-s3'
import { openMaybeGzipped } from './read-replay-files.ts'

export type OpenReplayInput = ((path: string) => Promise<Readable>) & { close(): void }

export function createReplayOpener(env: Readonly<Record<string, string | undefined>>): OpenReplayInput {
  let s3: Promise<{ client: S3Client; close(): void }> | undefined
  const client = () => {
    s3 ??= import('./s3-client.ts').then(({ createAwsClients }) => {
      const clients = createAwsClients({ env })
      return { client: clients.s3, close: clients.close }
    })
    return s3
  }
  const open = async (path: string) => {
    if (!path.startsWith('s3://')) return openMaybeGzipped(path)
    const [{ openS3Object }, { client: s3Client }] = await Promise.all([
      import('./s3-replay-objects.ts'),
      client(),
    ])
    return openS3Object(s3Client, path)
  }
  return Object.assign(open, { close: () => void s3?.then((c) => c.close()) })
}
