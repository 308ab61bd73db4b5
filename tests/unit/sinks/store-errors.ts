// The embedded store's error counter, nerve_component_errors_total{component="correlation_store"}, as the
// store writer's tests read it: by code and stage (the write, the thread, the index build, retention).
import type { TestRuntime } from '../../helpers/test-runtime.ts'

/** The errors the store counted with these labels (a label left out: any), summed. */
export const storeErrors = (rt: TestRuntime, labels: { error_code?: string; stage?: string }) =>
  rt.metricValue('nerve_component_errors_total', { component: 'correlation_store', ...labels })
