// Entry of the benches' worker threads: a worker does not inherit the tsx loader of the main thread, so
// this registers it and then imports the TypeScript module named by `workerData.module`.
import { workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
await import(workerData.module)
