// The import rule of STYLE.md: schemas → nothing; runtime → schemas; bus → schemas, runtime;
// stages (ingest, correlate, sinks) → schemas, runtime, bus/bus.ts, bus/topics.ts, never each other
// and never a bus implementation; nerve.ts → everything. bus/bus-port.ts is no implementation either: it
// carries any Bus across a thread boundary, for a stage that runs on a worker thread.
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
    return path.endsWith('.ts') ? [path] : []
  })
}

function relativeImports(file: string, text: string): string[] {
  const specifiers = [
    ...text.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ]
  return specifiers
    .map((m) => m[1] ?? m[2] ?? '')
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

  it('catches a stage importing another stage or a bus implementation', () => {
    const text = "import { x } from '../correlate/correlator.ts'\nimport { y } from '../bus/embedded-bus.ts'"
    const targets = relativeImports('ingest/falco-receiver.ts', text)
    expect(targets.filter((t) => !allowed.ingest?.(t))).toEqual([
      'correlate/correlator.ts',
      'bus/embedded-bus.ts',
    ])
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
