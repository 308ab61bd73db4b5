// bench/v8-work.ts sorts `perf script` samples of `nerve run` by thread and kind of work. The samples below
// are from a pipeline bench run (BENCH_PERF, 2026-12-08), addresses as perf printed them.
import { describe, expect, it } from 'vitest'
import { tally } from '../../../bench/v8-work.ts'

const turbofanOnPlatformThread = `node 27107/27111
	         1e4cd17 v8::internal::compiler::PipelineImpl::OptimizeGraph
	         1e4d890 v8::internal::compiler::PipelineCompilationJob::ExecuteJobImpl
	          ba767b v8::internal::OptimizedCompilationJob::ExecuteJob
	          bd54a1 v8::internal::OptimizingCompileDispatcher::CompileNext
	          bd581d v8::internal::OptimizingCompileDispatcher::CompileTask::RunInternal
	          932ce1 node::(anonymous namespace)::PlatformWorkerThread
	           891f5 start_thread
`
const scavengeOnPlatformThread = `node 27107/27111
	          d91a48 v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>
	          d9b1d9 v8::internal::Scavenger::ScavengePage
	          d9b687 v8::internal::ScavengerCollector::JobTask::ConcurrentScavengePages
	          d9d324 v8::internal::ScavengerCollector::JobTask::ProcessItems
	          d9d465 v8::internal::ScavengerCollector::JobTask::Run
	         195b578 v8::platform::DefaultJobWorker::Run
	          932ce1 node::(anonymous namespace)::PlatformWorkerThread
	           891f5 start_thread
`
const markingOnPlatformThread = `node 27107/27110
	          ca03b2 v8::internal::MarkingVisitorBase<v8::internal::ConcurrentMarkingVisitor, v8::internal::ConcurrentMarkingState>::ProcessStrongHeapObject<v8::internal::FullHeapObjectSlot>
	          ca0602 v8::internal::BodyDescriptorBase::IteratePointers<v8::internal::ConcurrentMarkingVisitor>
	          ca3f2d v8::internal::ConcurrentMarking::RunMajor
	          ca79ed v8::internal::ConcurrentMarking::JobTaskMajor::Run
	         195b578 v8::platform::DefaultJobWorker::Run
	          932ce1 node::(anonymous namespace)::PlatformWorkerThread
	           891f5 start_thread
`
const syncOnLibuvPool = `node 27107/27117
	         14afc84 uv__fs_work
	         14a7b40 worker
	           891f5 start_thread
`
const jsonParseOnMainThread = `node 27107/27107
	          e245df v8::internal::JsonParser<unsigned char>::SkipWhitespace
	          b7a901 v8::internal::Builtin_JsonParse
	         155e376 Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit
	    7f9e1c325940 [unknown]
	         14f7cb4 Builtins_RunMicrotasks
	          81fa72 node::Environment::CheckImmediate
	         14b4309 uv__run_check
	         14ac92c uv_run
	          9069e1 node::NodeMainInstance::Run
	          86853f node::Start
`
const mallocOnCorrelateThread = `nerve-correlate 27107/27126
	           98a9a malloc
`

describe('v8-work: the threads named node told apart, and their work by kind', () => {
  it('puts TurboFan and the collector on V8 platform threads, fdatasync on libuv pool threads', () => {
    const byThread = tally(
      [
        turbofanOnPlatformThread,
        scavengeOnPlatformThread,
        scavengeOnPlatformThread,
        markingOnPlatformThread,
        syncOnLibuvPool,
      ].join('\n'),
    )
    expect(Object.fromEntries(byThread.get('node: V8 platform') ?? [])).toEqual({
      turbofan: 1,
      scavenge: 2,
      marking: 1,
    })
    expect(Object.fromEntries(byThread.get('node: libuv pool') ?? [])).toEqual({ 'file sync': 1 })
  })

  it('keeps the main thread (same id as the process) and named threads apart from them', () => {
    const byThread = tally([jsonParseOnMainThread, mallocOnCorrelateThread].join('\n'))
    expect([...byThread.keys()].sort()).toEqual(['main', 'nerve-correlate'])
    expect(byThread.get('main')?.get('rest')).toBe(1)
  })
})
