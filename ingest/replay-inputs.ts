// `nerve replay`'s arguments → what it reads, each with its size: local files, directories and globs
// (expand-replay-inputs.ts) and s3://bucket/prefix listings (s3-replay-objects.ts), in argument order,
// each path once, kept to the files whose CloudTrail time is within --since/--until (a name without one
// is kept); and the opener that reads them.
import { statSync } from 'node:fs'
import type { S3Client } from '@aws-sdk/client-s3'
import { NerveError } from '../runtime/errors.ts'
import { expandReplayInputs } from './expand-replay-inputs.ts'
import { createReplayOpener, type OpenReplayInput } from './open-replay-input.ts'
import { inWindow, type TimeWindow } from './replay-file-time.ts'
import type { ReplayObject } from './s3-replay-objects.ts'

export async function resolveReplayInputs(
  args: readonly string[],
  window: TimeWindow,
  env: Readonly<Record<string, string | undefined>>,
): Promise<{ inputs: ReplayObject[]; open: OpenReplayInput }> {
  const inputs: ReplayObject[] = []
  const seen = new Set<string>()
  const add = (object: ReplayObject) => {
    if (seen.has(object.path)) return
    seen.add(object.path)
    inputs.push(object)
  }
  let clients: { s3: S3Client; close(): void } | undefined
  try {
    for (const arg of args) {
      if (!arg.startsWith('s3://')) {
        for (const path of expandReplayInputs([arg]))
          if (inWindow(path, window)) add({ path, size: statSync(path).size })
        continue
      }
      const { createAwsClients } = await import('./s3-client.ts')
      const { listReplayObjects } = await import('./s3-replay-objects.ts')
      clients ??= createAwsClients({ env })
      const found = await listReplayObjects(clients.s3, arg, window)
      if (found.length === 0) throw new NerveError('INPUT_INVALID', `${arg} holds no file to read.`)
      for (const object of found) add(object)
    }
  } finally {
    clients?.close()
  }
  return { inputs, open: createReplayOpener(env) }
}
