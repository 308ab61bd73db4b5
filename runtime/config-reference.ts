// The configuration reference, generated from schemas/config.schema.json: `nerve config --reference`
// prints it and the README carries it (a test keeps the two in step).
import {
  durationRef,
  type SchemaNode as Node,
  resolveRef,
  configSchemaRoot as root,
} from './config-schema.ts'

export function configReferenceMarkdown(): string {
  const rows = walk('', root)
  const lines = ['| key | type | default | description |', '| --- | --- | --- | --- |']
  for (const r of rows) lines.push(`| \`${r.key}\` | ${r.type} | ${r.default} | ${r.description} |`)
  return `${lines.join('\n')}\n`
}

type Row = { key: string; type: string; default: string; description: string }

function walk(prefix: string, node: Node): Row[] {
  const resolved = resolve(node)
  const rows: Row[] = []
  for (const [key, child] of Object.entries(resolved.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key
    const target = resolve(child)
    if (target.properties) {
      if (child.description) rows.push(row(path, child, 'object'))
      rows.push(...walk(path, target))
    } else if (target.items?.$ref?.startsWith('#/properties/')) {
      // Items shaped like another key's (extra_rules like rules): listed once, there.
      const same = target.items.$ref.replace('#/properties/', '').replaceAll('/properties/', '.')
      rows.push(row(path, child, `list (items as \`${same.replace(/\/items$/, '[]')}\`)`))
    } else if (target.items && resolve(target.items).properties) {
      rows.push(row(path, child, 'list'))
      rows.push(...walk(`${path}[]`, resolve(target.items)))
    } else {
      rows.push(row(path, child, typeOf(child)))
    }
  }
  return rows
}

function row(key: string, node: Node, type: string): Row {
  const description = (node.description ?? resolve(node).description ?? '').replaceAll('|', '\\|')
  const value = node.default
  const shown = value === undefined || (typeof value === 'object' && Object.keys(value ?? {}).length === 0)
  return { key, type, default: shown ? '' : `\`${JSON.stringify(value)}\``, description }
}

function typeOf(node: Node): string {
  if (node.$ref === durationRef)
    return node.maxDuration ? `duration, at most ${node.maxDuration}` : 'duration'
  const target = resolve(node)
  if (target.enum) return target.enum.map((v) => `\`${String(v)}\``).join(' \\| ')
  if (target.items) return `list of ${typeOf(target.items)}`
  return Array.isArray(target.type) ? target.type.join(' \\| ') : (target.type ?? 'any')
}

function resolve(node: Node): Node {
  return resolveRef(node, root)
}
