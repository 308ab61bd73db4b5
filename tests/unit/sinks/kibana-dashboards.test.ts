// The saved objects shipped in dashboards/*.ndjson, linted the way Kibana's import cannot (its validation is
// shallow, sinks.md §3.3): one JSON object per line, stable ids, version fields, every reference resolvable
// inside the file, JSON-in-string attributes that parse, and every field a panel reads mapped by our templates.
import { readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  cloudTrailDataset,
  dataStreamName,
  indexedTopics,
} from '../../../sinks/elasticsearch-data-streams.ts'
import { ecsFieldMappings, nerveFieldMappings } from '../../../sinks/elasticsearch-templates.ts'

type SavedObject = {
  type: string
  id: string
  attributes: Record<string, unknown>
  references: { type: string; id: string; name: string }[]
  coreMigrationVersion: string
  typeMigrationVersion: string
}

const dir = resolve(import.meta.dirname, '../../../dashboards')
const files = readdirSync(dir).filter((f) => f.endsWith('.ndjson'))
const lines = files.flatMap((f) =>
  readFileSync(resolve(dir, f), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line, i) => ({ where: `${f}:${i + 1}`, line })),
)
const objects: SavedObject[] = lines.map(({ line }) => JSON.parse(line))
const byKey = new Map(objects.map((o) => [`${o.type}/${o.id}`, o]))
const mapped = (field: string) => field in ecsFieldMappings || field in nerveFieldMappings
const semver = /^\d+\.\d+\.\d+$/

type LensColumn = { sourceField?: string; operationType: string }
type LensState = {
  datasourceStates: { formBased: { layers: Record<string, { columns: Record<string, LensColumn> }> } }
  visualization: {
    layers: { layerId: string; xAccessor?: string; accessors: string[]; splitAccessor?: string }[]
  }
  query: { query: string; language: string }
}

describe('dashboards/*.ndjson', () => {
  it('holds one JSON saved object per line', () => {
    expect(files.length).toBeGreaterThan(0)
    for (const { where, line } of lines) expect(() => JSON.parse(line), where).not.toThrow()
  })

  it('keeps the same ids (the import overwrites by id)', () => {
    expect(objects.map((o) => `${o.type}/${o.id}`)).toEqual([
      'index-pattern/nerve-events',
      'index-pattern/nerve-correlations',
      'index-pattern/nerve-revokes',
      'lens/nerve-correlations-over-time',
      'lens/nerve-agents-by-risk',
      'search/nerve-latest-incidents',
      'lens/nerve-revoke-outcomes',
      'lens/nerve-cloudtrail-lag',
      'dashboard/nerve-edge-to-core',
    ])
    expect(byKey.size).toBe(objects.length)
  })

  it('carries attributes and the version fields Kibana 8.8+ needs on every object', () => {
    for (const o of objects) {
      expect(o.attributes, o.id).toBeTypeOf('object')
      expect(o.attributes.title, o.id).toBeTypeOf('string')
      expect(Array.isArray(o.references), o.id).toBe(true)
      expect(o.coreMigrationVersion, o.id).toBe('8.8.0')
      expect(o.typeMigrationVersion, o.id).toMatch(semver)
    }
  })

  it('resolves every reference to an object of the same file', () => {
    const missing = objects.flatMap((o) =>
      o.references.filter((r) => !byKey.has(`${r.type}/${r.id}`)).map((r) => `${o.id} → ${r.type}/${r.id}`),
    )
    expect(missing).toEqual([])
  })

  it('has one data view per data stream, on @timestamp (events with the CloudTrail stream they feed)', () => {
    const views = objects.filter((o) => o.type === 'index-pattern')
    expect(views.map((v) => v.attributes.title)).toEqual(
      indexedTopics.map((t) =>
        t === 'events' ? `${dataStreamName(t, '*')},logs-${cloudTrailDataset}-*` : dataStreamName(t, '*'),
      ),
    )
    for (const v of views) {
      expect(v.attributes.timeFieldName).toBe('@timestamp')
      if (v.attributes.fieldFormatMap) {
        for (const field of Object.keys(JSON.parse(String(v.attributes.fieldFormatMap)))) {
          expect(mapped(field), field).toBe(true)
        }
      }
    }
  })

  it('builds every Lens layer on a referenced data view, from mapped fields', () => {
    for (const lens of objects.filter((o) => o.type === 'lens')) {
      const state = lens.attributes.state as LensState
      for (const [layerId, layer] of Object.entries(state.datasourceStates.formBased.layers)) {
        expect(
          lens.references.map((r) => r.name),
          lens.id,
        ).toContain(`indexpattern-datasource-layer-${layerId}`)
        for (const column of Object.values(layer.columns)) {
          if (column.sourceField && column.sourceField !== '___records___') {
            expect(mapped(column.sourceField), `${lens.id}: ${column.sourceField}`).toBe(true)
          }
        }
        const accessors = state.visualization.layers.filter((l) => l.layerId === layerId)
        const used = accessors.flatMap((l) => [l.xAccessor, l.splitAccessor, ...l.accessors]).filter(Boolean)
        expect(
          used.every((id) => id !== undefined && id in layer.columns),
          lens.id,
        ).toBe(true)
      }
    }
  })

  it('lists the latest incidents with their edge rule and core action', () => {
    const search = byKey.get('search/nerve-latest-incidents') as SavedObject
    expect(search.attributes.columns).toEqual(
      expect.arrayContaining(['nerve.edge.rule', 'nerve.core.action']),
    )
    for (const column of search.attributes.columns as string[]) expect(mapped(column), column).toBe(true)
    const source = JSON.parse(
      String((search.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }).searchSourceJSON),
    )
    expect(search.references.map((r) => r.name)).toContain(source.indexRefName)
  })

  it('puts the five panels on the "Edge to core" dashboard, each with its panel reference', () => {
    const dashboard = byKey.get('dashboard/nerve-edge-to-core') as SavedObject
    expect(dashboard.attributes.title).toBe('Edge to core')
    const panels = JSON.parse(String(dashboard.attributes.panelsJSON)) as {
      panelIndex: string
      panelRefName: string
    }[]
    expect(JSON.parse(String(dashboard.attributes.optionsJSON))).toMatchObject({ useMargins: true })
    const meta = dashboard.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }
    expect(JSON.parse(meta.searchSourceJSON)).toMatchObject({ filter: [] })
    expect(
      panels.map((p) => dashboard.references.find((r) => r.name === `${p.panelIndex}:${p.panelRefName}`)?.id),
    ).toEqual([
      'nerve-correlations-over-time',
      'nerve-agents-by-risk',
      'nerve-latest-incidents',
      'nerve-revoke-outcomes',
      'nerve-cloudtrail-lag',
    ])
  })
})
