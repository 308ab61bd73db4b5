// Walking schemas/config.schema.json beside a config value: `$ref` pointers resolved (to `$defs` or to any
// other part of the schema, as `correlation.extra_rules` points at the rules' item schema), the node at an
// instance path, and the keys allowed there. Shared by loading, printing and the reference. Pure.
import configSchema from '../schemas/config.schema.json' with { type: 'json' }

export type SchemaNode = {
  $ref?: string
  $defs?: Record<string, SchemaNode>
  type?: string | string[]
  description?: string
  default?: unknown
  enum?: unknown[]
  properties?: Record<string, SchemaNode>
  items?: SchemaNode
  anyOf?: SchemaNode[]
  /** Beside a duration's `$ref`: its longest value (schemas/validators.ts checks it). */
  maxDuration?: string
}

export const configSchemaRoot = configSchema as unknown as SchemaNode

export const durationRef = '#/$defs/duration'

/** The node a `$ref` points at (JSON pointer within the config schema), merged under the referring node. */
export function resolveRef(node: SchemaNode, root: SchemaNode = configSchemaRoot): SchemaNode {
  if (!node.$ref) return node
  let target: unknown = root
  for (const part of node.$ref.replace(/^#\//, '').split('/')) {
    target = (target as Record<string, unknown> | undefined)?.[
      part.replaceAll('~1', '/').replaceAll('~0', '~')
    ]
  }
  const resolved = resolveRef((target ?? {}) as SchemaNode, root)
  return { ...resolved, ...node, $ref: undefined, description: node.description ?? resolved.description }
}

/** The schema node for an ajv instance path such as `/correlation/rules/0/edge`. */
export function schemaAt(instancePath: string, root: SchemaNode = configSchemaRoot): SchemaNode | undefined {
  let node: SchemaNode | undefined = resolveRef(root, root)
  for (const part of instancePath.split('/').filter(Boolean)) {
    if (!node) return undefined
    const next: SchemaNode | undefined =
      /^\d+$/.test(part) && node.items ? node.items : node.properties?.[part]
    node = next ? resolveRef(next, root) : undefined
  }
  return node
}
