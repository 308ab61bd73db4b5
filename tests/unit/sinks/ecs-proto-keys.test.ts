// The watched agent names its own tags and request parameters: a key named `__proto__` (a valid AWS tag key)
// must reach the Elasticsearch document as a field, not set an object's prototype and vanish.
import { describe, expect, it } from 'vitest'
import { compact, type EcsDocument, mergeDocuments } from '../../../sinks/ecs-field-mapping.ts'

const parsed = (text: string) => JSON.parse(text) as EcsDocument

describe('documents keep a field named __proto__', () => {
  it('compact keeps it at any depth', () => {
    const doc = parsed('{"aws":{"tags":{"__proto__":"hidden","team":"ml"}},"__proto__":{"x":1}}')
    const out = compact(doc)
    expect(JSON.parse(JSON.stringify(out))).toEqual(doc)
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(JSON.stringify(out)).toBe(
      '{"aws":{"tags":{"__proto__":"hidden","team":"ml"}},"__proto__":{"x":1}}',
    )
  })

  it('mergeDocuments keeps it from either side, merged like any object', () => {
    const base = parsed('{"aws":{"tags":{"team":"ml"}}}')
    const over = parsed('{"aws":{"tags":{"__proto__":{"a":1}}},"__proto__":"top"}')
    const out = mergeDocuments(base, over)
    expect(JSON.stringify(out)).toBe('{"aws":{"tags":{"team":"ml","__proto__":{"a":1}}},"__proto__":"top"}')
    const both = mergeDocuments(parsed('{"__proto__":{"a":1}}'), parsed('{"__proto__":{"b":2}}'))
    expect(JSON.stringify(both)).toBe('{"__proto__":{"a":1,"b":2}}')
  })
})
