// The import rule of STYLE.md: schemas → nothing; runtime → schemas; bus → schemas, runtime;
// stages (ingest, correlate, sinks) → schemas, runtime, bus/bus.ts, bus/topics.ts, bus/bus-port.ts, never
// each other and never a bus implementation; nerve.ts → everything. bus/bus-port.ts is no implementation:
// it carries any Bus across a thread boundary, for a stage that runs on a worker thread, and re-exports the
// embedded bus's record reader, with which such a thread reads the range of the bus's file it is handed
// (SubscribeOptions.unread) instead of receiving the records through the thread that owns the bus.
// Checked in .ts and .mjs (the worker entries): static, side-effect and dynamic imports, re-exports, and
// `new URL('…', import.meta.url)` (a Worker's module, an asset).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const stages = ['ingest', 'correlate', 'sinks']
const allowed: Record<string, (target: string) => boolean> = {
  schemas: (t) => t.startsWith('schemas/'),
  runtime: (t) => /^(schemas|runtime)\//.test(t),
  bus: (t) => /^(schemas|runtime|bus)\//.test(t),
  ...Object.fromEntries(
    stages.map((stage) => [
      stage,
      (t: string) =>
        /^(schemas|runtime)\//.test(t) ||
        t === 'bus/bus.ts' ||
        t === 'bus/topics.ts' ||
        t === 'bus/bus-port.ts' ||
        t.startsWith(`${stage}/`),
    ]),
  ),
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path)
    return /\.(ts|mjs)$/.test(path) ? [path] : []
  })
}

const references = [
  /\b(?:import|export)\s[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\bnew URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g,
]

function relativeImports(file: string, text: string): string[] {
  return references
    .flatMap((pattern) => [...text.matchAll(pattern)].map((m) => m[1] ?? ''))
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(root, resolve(root, dirname(file), s)))
}

describe('one-way imports', () => {
  for (const [folder, may] of Object.entries(allowed)) {
    it(`${folder}/ imports only what the layout allows`, () => {
      const violations = sourceFiles(folder).flatMap((file) =>
        relativeImports(file, readFileSync(join(root, file), 'utf8'))
          .filter((target) => !may(target))
          .map((target) => `${file} → ${target}`),
      )
      expect(violations).toEqual([])
    })
  }

  it('catches a stage importing another stage or a bus implementation, in every form', () => {
    const text = [
      "import { x } from '../correlate/correlator.ts'",
      "import '../sinks/start-sinks.ts'",
      "const { y } = await import('../bus/embedded-bus.ts')",
      "export { z } from '../bus/kafka-bus.ts'",
      "new Worker(new URL('../sinks/store-writer.worker.mjs', import.meta.url))",
      "import type { Bus } from '../bus/bus.ts'",
      "const { openRecordReader } = await import('../bus/bus-port.ts')",
    ].join('\n')
    const targets = relativeImports('ingest/falco-receiver.ts', text)
    expect(targets.filter((t) => !allowed.ingest?.(t)).sort()).toEqual([
      'bus/embedded-bus.ts',
      'bus/kafka-bus.ts',
      'correlate/correlator.ts',
      'sinks/start-sinks.ts',
      'sinks/store-writer.worker.mjs',
    ])
  })

  it('sees the worker entries and the modules they start', () => {
    const importsOf = (file: string) => relativeImports(file, readFileSync(join(root, file), 'utf8'))
    expect(stages.flatMap(sourceFiles)).toEqual(
      expect.arrayContaining(['sinks/store-writer.worker.mjs', 'correlate/correlate.worker.mjs']),
    )
    expect(importsOf('correlate/correlate-thread.ts')).toContain('correlate/correlate.worker.mjs')
    expect(importsOf('correlate/correlate.worker.mjs')).toContain('correlate/correlate-worker.ts')
    expect(importsOf('sinks/store-writer.worker.mjs')).toContain('bus/bus-port.ts')
  })

  // kafkajs is in maintenance mode: it stays fenced in the Kafka bus, whose consumer has a file of its own
  // and takes only kafkajs's types (the client is the bus's).
  it('is imported only by the Kafka bus: bus/kafka-bus.ts, and its types by bus/kafka-consumer.ts', () => {
    const importers = [
      'nerve.ts',
      'nerve-replay.ts',
      ...['schemas', 'runtime', 'bus', ...stages].flatMap(sourceFiles),
    ].filter((f) => /from\s+['"]kafkajs['"]/.test(readFileSync(join(root, f), 'utf8')))
    expect(importers.filter((f) => f !== 'bus/kafka-bus.ts' && f !== 'bus/kafka-consumer.ts')).toEqual([])
    const consumer = readFileSync(join(root, 'bus/kafka-consumer.ts'), 'utf8')
    expect(consumer.match(/^import .*from ['"]kafkajs['"]/gm)).toEqual([
      expect.stringMatching(/^import type /),
    ])
  })
})
