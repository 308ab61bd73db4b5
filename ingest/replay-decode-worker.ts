// A decoding thread of `nerve replay --order time`: files in (one at a time, from the pool), their
// decoded parts out (decode-replay-file.ts). At most `credit` parts wait unread in the main thread; each
// one it reads gives one back, so a slow merge holds the threads back instead of queueing whole files.
import { parentPort, workerData } from 'node:worker_threads'
import type { Config } from '../schemas/types.ts'
import { decodeReplayFile, type EventFilter, replayDecodeConfig } from './decode-replay-file.ts'
import { createReplayOpener } from './open-replay-input.ts'
import type { ToPool, ToWorker } from './replay-decode-pool.ts'

const data = workerData as {
  config: Config
  filterModule: string
  maxDepth: number
  now?: number
  credit: number
  env: Record<string, string>
}
const { config, filterModule, maxDepth, now, env } = data
const port = parentPort as NonNullable<typeof parentPort>
const { createReplayFilter } = (await import(filterModule)) as {
  createReplayFilter(config: Config): EventFilter
}
const filter = createReplayFilter(config)
const decodeConfig = replayDecodeConfig(config, { maxDepth, now, open: createReplayOpener(env) })
let credit = data.credit
let creditBack: (() => void) | undefined
const files: string[] = []
let wakeUp: (() => void) | undefined

port.on('message', (message: ToWorker) => {
  if (message.type === 'credit') {
    credit++
    creditBack?.()
    creditBack = undefined
  } else {
    files.push(message.file)
    wakeUp?.()
    wakeUp = undefined
  }
})

const post = (message: ToPool) => port.postMessage(message)

for (;;) {
  const file = files.shift()
  if (file === undefined) {
    await new Promise<void>((resolve) => {
      wakeUp = resolve
    })
    continue
  }
  try {
    for await (const part of decodeReplayFile(file, decodeConfig, filter)) {
      while (credit === 0)
        await new Promise<void>((resolve) => {
          creditBack = resolve
        })
      credit--
      post({ type: 'part', part })
    }
    post({ type: 'done', file })
  } catch (err) {
    post({ type: 'error', file, message: err instanceof Error ? err.message : String(err) })
  }
}
