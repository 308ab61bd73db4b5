// Entry of the correlate stage's worker thread (correlate-thread.ts): a worker does not inherit tsx's loader
// from the main thread, so it registers it, then loads the stage.
import { register } from 'tsx/esm/api'

register()
await import('./correlate-worker.ts')
