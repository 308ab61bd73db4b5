// What the config schema cannot say, checked once when the config is loaded (after the schema, reported
// the same way: a JSON pointer and a message), so that `nerve config` refuses what `nerve run` would and
// `nerve run` refuses it before it opens anything: two registry entries with one agent id, a revoke webhook
// secret that is not one, TLS files on a plain http:// target, a client certificate without its key, two
// targets under one label, and any `*_file` that cannot be read.
import type { Config } from '../schemas/types.ts'
import { webhookSecretProblem } from './webhook-secret.ts'
import { webhookTargetLabel } from './webhook-target-label.ts'

export type ConfigProblem = { path: string; message: string }

/** `fileProblem(path)`: why a file the config names cannot be read, or undefined. */
export function configProblems(
  config: Config,
  deps: { fileProblem(path: string): string | undefined },
): ConfigProblem[] {
  return [
    ...registryProblems(config.agents),
    ...webhookProblems(config.revoke.webhooks),
    ...issuerProblems(config.clusters),
    ...fileProblems(config, '', deps.fileProblem),
  ]
}

/** An OIDC issuer names one cluster: its IRSA credentials take that cluster. */
function issuerProblems(clusters: Config['clusters']): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const named = new Map<string, string>()
  clusters.forEach((cluster, i) => {
    if (cluster.oidc_issuer === undefined) return
    const other = named.get(cluster.oidc_issuer)
    if (other === undefined) named.set(cluster.oidc_issuer, cluster.name)
    else
      problems.push({
        path: `/clusters/${i}/oidc_issuer`,
        message: `is already the issuer of cluster ${other}: an issuer belongs to one cluster`,
      })
  })
  return problems
}

/** One entry per agent id: of two, which one's `protected` and identifiers count would depend on order. */
function registryProblems(agents: Config['agents']): ConfigProblem[] {
  const first = new Map<string, string>()
  return agents.flatMap((agent, i) => {
    const at = `/agents/${i}`
    const earlier = first.get(agent.id)
    if (earlier === undefined) {
      first.set(agent.id, at)
      return []
    }
    return [
      {
        path: `${at}/id`,
        message: `is ${JSON.stringify(agent.id)}, the id of ${earlier} too: an agent is one entry, so put both match lists in one (and say protected there)`,
      },
    ]
  })
}

function webhookProblems(webhooks: Config['revoke']['webhooks']): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  /** The first target's path per label: a 410 disables a target by its label (revoke-outbox.ts). */
  const labels = new Map<string, string>()
  webhooks.forEach((target, i) => {
    const at = `/revoke/webhooks/${i}`
    const label = labelOf(target.url)
    if (label === undefined) problems.push({ path: `${at}/url`, message: 'is not a URL' })
    else if (labels.has(label))
      problems.push({
        path: `${at}/url`,
        message: `is the same target as ${labels.get(label)} (${label}): nerve knows a target by its URL without credentials or query, so these two would share one (a 410 from one would disable both); give each receiver its own path`,
      })
    else labels.set(label, at)
    const secret = target.secret === undefined ? undefined : webhookSecretProblem(target.secret)
    if (secret) problems.push({ path: `${at}/secret`, message: secret })
    target.secrets?.forEach((s, j) => {
      const problem = webhookSecretProblem(s)
      if (problem) problems.push({ path: `${at}/secrets/${j}`, message: problem })
    })
    if (!target.url.startsWith('https://')) {
      for (const key of ['ca_file', 'cert_file', 'key_file'] as const) {
        if (target[key]) problems.push({ path: `${at}/${key}`, message: 'needs an https:// url' })
      }
    }
    if (Boolean(target.cert_file) !== Boolean(target.key_file)) {
      const [given, missing] = target.cert_file ? ['cert_file', 'key_file'] : ['key_file', 'cert_file']
      problems.push({ path: `${at}/${given}`, message: `needs ${missing} too (a client certificate)` })
    }
  })
  return problems
}

function labelOf(url: string): string | undefined {
  try {
    return webhookTargetLabel(new URL(url))
  } catch {
    return undefined
  }
}

/** Every string under a key ending in `_file`, anywhere in the config, must name a readable file. */
function fileProblems(
  value: unknown,
  path: string,
  fileProblem: (path: string) => string | undefined,
): ConfigProblem[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => fileProblems(v, `${path}/${i}`, fileProblem))
  if (!value || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, v]) => {
    if (!key.endsWith('_file') || typeof v !== 'string') return fileProblems(v, `${path}/${key}`, fileProblem)
    const problem = fileProblem(v)
    return problem ? [{ path: `${path}/${key}`, message: problem }] : []
  })
}
