// Entry of replay's decoding threads (replay-decode-pool.ts): a worker does not inherit the main
// thread's TypeScript loader, so this registers it, then loads the thread's code.
import { register } from 'tsx/esm/api'

register()
await import('./replay-decode-worker.ts')
