// docker-compose.yml, Dockerfile and deploy/ are checked as data: there is no Docker engine here, so
// `docker compose config` cannot run. Services, healthchecks, start order, and the wiring between them.
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { loadConfig } from '../../../runtime/load-config.ts'

const root = resolve(import.meta.dirname, '../../..')
const read = (file: string) => readFileSync(join(root, file), 'utf8')

type Service = {
  image?: string
  build?: string
  command?: string[]
  entrypoint?: string[]
  restart?: string
  environment?: Record<string, string | number>
  ports?: string[]
  volumes?: string[]
  healthcheck?: { test?: string[]; disable?: boolean }
  depends_on?: Record<string, { condition: string }>
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>
  volumes: Record<string, unknown>
}
const services = compose.services
const service = (name: string): Service => {
  const found = services[name]
  if (!found) throw new Error(`no service ${name}`)
  return found
}

/** Compose's `${VAR:-default}` with no VAR set: what a fresh `docker compose up` runs with. */
const withDefaults = (value: string | number) =>
  String(value).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, (_, fallback: string) => fallback)

const nerveServices = ['setup', 'ingest', 'correlate', 'sink']
const longRunning = ['kafka', 'elasticsearch', 'kibana', 'ingest', 'correlate', 'sink']

describe('docker-compose.yml', () => {
  it('has Kafka, Elasticsearch, Kibana, Falcosidekick, the one-shot setup and the three nerve stages', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['correlate', 'elasticsearch', 'falcosidekick', 'ingest', 'kafka', 'kibana', 'setup', 'sink'].sort(),
    )
  })

  it('runs Kafka in KRaft mode, without ZooKeeper', () => {
    const kafka = service('kafka')
    expect(kafka.image).toMatch(/^apache\/kafka:3\.\d+\.\d+$/)
    expect(String(kafka.environment?.KAFKA_PROCESS_ROLES)).toBe('broker,controller')
    expect(String(kafka.environment?.KAFKA_CONTROLLER_QUORUM_VOTERS)).toMatch(/^1@kafka:9093$/)
    expect(JSON.stringify(compose)).not.toMatch(/zookeeper/i)
  })

  it('gives every long-running service a healthcheck of what it serves', () => {
    for (const name of longRunning) expect(service(name).healthcheck?.test, name).toBeDefined()
    const test = (name: string) => (service(name).healthcheck?.test ?? []).join(' ')
    expect(test('kafka')).toContain('kafka-broker-api-versions.sh --bootstrap-server localhost:9092')
    expect(test('elasticsearch')).toContain('_cluster/health?wait_for_status=yellow')
    expect(test('kibana')).toContain('/api/status')
    for (const name of ['ingest', 'correlate', 'sink']) expect(test(name)).toContain('/healthz')
  })

  it('starts each service after what it needs, by conditions that can come true', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(s.depends_on ?? {})) {
        const target = service(dependency)
        if (condition === 'service_healthy')
          expect(target.healthcheck?.test, `${name} → ${dependency}`).toBeDefined()
        else expect(condition, `${name} → ${dependency}`).toBe('service_completed_successfully')
        if (condition === 'service_completed_successfully') expect(target.restart).toBe('no')
      }
    }
    expect(service('sink').depends_on).toMatchObject({
      kafka: { condition: 'service_healthy' },
      elasticsearch: { condition: 'service_healthy' },
      setup: { condition: 'service_completed_successfully' },
    })
    expect(service('setup').depends_on).toMatchObject({
      elasticsearch: { condition: 'service_healthy' },
      kibana: { condition: 'service_healthy' },
    })
    expect(service('falcosidekick').depends_on).toMatchObject({ ingest: { condition: 'service_healthy' } })
  })

  it('builds the nerve services from this repository and runs one stage (a nerve command) in each', () => {
    for (const name of nerveServices) expect(service(name).build, name).toBe('.')
    expect(service('ingest').command).toEqual(['ingest'])
    expect(service('correlate').command).toEqual(['correlate'])
    expect(service('sink').command).toEqual(['sink'])
    expect(service('setup').command?.join(' ')).toBe(
      'node bin/nerve.mjs setup elasticsearch && node bin/nerve.mjs setup kibana',
    )
    const cli = read('nerve.ts')
    for (const command of ['ingest', 'correlate', 'sink', 'setup'])
      expect(cli).toMatch(new RegExp(`^  ${command}: `, 'm'))
  })

  it('wires the nerve services to Kafka, Elasticsearch and Kibana by service name', () => {
    for (const name of nerveServices) {
      const env = service(name).environment ?? {}
      expect(env.NERVE_KAFKA_BROKERS).toBe('kafka:9092')
      expect(env.NERVE_ELASTICSEARCH_URL).toBe('http://elasticsearch:9200')
      expect(env.NERVE_KIBANA_URL).toBe('http://kibana:5601')
      expect(env.NERVE_HTTP_HOST).toBe('0.0.0.0')
    }
    expect(String(service('kafka').environment?.KAFKA_ADVERTISED_LISTENERS)).toContain(
      'PLAINTEXT://kafka:9092',
    )
    expect(service('elasticsearch').environment).toMatchObject({ 'xpack.security.enabled': 'false' })
  })

  it('gives each stage its own data volume', () => {
    for (const name of ['ingest', 'correlate', 'sink']) {
      expect(service(name).volumes).toContain(`${name}-data:/data`)
      expect(compose.volumes).toHaveProperty(`${name}-data`)
    }
  })

  it('loads a valid config in every nerve service (deploy/nerve.yaml plus the compose environment)', () => {
    for (const name of nerveServices) {
      const s = service(name)
      const env = Object.fromEntries(
        Object.entries(s.environment ?? {}).map(([k, v]) => [k, withDefaults(v)]),
      )
      const mounted = s.volumes?.find((v) => v.endsWith(`:${env.NERVE_CONFIG}:ro`))
      expect(mounted, name).toBe('./deploy/nerve.yaml:/etc/nerve/nerve.yaml:ro')
      const config = loadConfig({ env: { ...env, NERVE_CONFIG: join(root, 'deploy/nerve.yaml') } })
      expect(config.kafka.brokers).toEqual(['kafka:9092'])
      expect(config.ingest.token).toBe(withDefaults(String(s.environment?.NERVE_INGEST_TOKEN)))
    }
  })

  it('points Falcosidekick at /v1/falco on the ingest service with the same bearer token', () => {
    const env = service('falcosidekick').environment ?? {}
    expect(env.WEBHOOK_ADDRESS).toBe('http://ingest:8080/v1/falco')
    const token = withDefaults(String(service('ingest').environment?.NERVE_INGEST_TOKEN))
    expect(withDefaults(String(env.WEBHOOK_CUSTOMHEADERS))).toBe(`Authorization:Bearer ${token}`)
    // WEBHOOK_CUSTOMHEADERS is split on ':' and ',' by Falcosidekick.
    expect(token).not.toMatch(/[:,]/)
    expect(String(env.WEBHOOK_CUSTOMHEADERS)).toContain('${NERVE_INGEST_TOKEN:-')
  })
})

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile')
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))

  it('builds on Node 20 with build tools for better-sqlite3 and installs only runtime dependencies', () => {
    expect(dockerfile.match(/^FROM node:20[^\s]*/gm)?.length).toBe(2)
    expect(dockerfile).toMatch(/apt-get install[^\n]*python3 make g\+\+/)
    expect(dockerfile).toContain('npm ci --omit=dev')
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> }
    expect(pkg.dependencies).toHaveProperty('tsx')
  })

  it('runs the nerve bin as an unprivileged user, serving /healthz', () => {
    expect(dockerfile).toContain('ENTRYPOINT ["node", "--max-semi-space-size=64", "bin/nerve.mjs"]')
    expect(existsSync(join(root, 'bin/nerve.mjs'))).toBe(true)
    expect(dockerfile).toMatch(/^USER node$/m)
    expect(dockerfile).toContain('/healthz')
  })

  it('keeps out of the image only what it does not run', () => {
    for (const needed of [
      'bin',
      'nerve.ts',
      'runtime',
      'schemas',
      'bus',
      'ingest',
      'correlate',
      'sinks',
      'dashboards',
    ]) {
      expect(ignored, needed).not.toContain(needed)
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'tests', '.git', 'data']))
  })
})

describe('deploy/falco/falco-nerve.yaml', () => {
  it('sends JSON alerts to /v1/falco with ?token= and appends the Kubernetes and image fields', () => {
    const falco = parse(read('deploy/falco/falco-nerve.yaml')) as {
      json_output: boolean
      http_output: { enabled: boolean; url: string }
      append_output: { match?: { source: string }; extra_fields?: string[]; suggested_output?: boolean }[]
    }
    expect(falco.json_output).toBe(true)
    expect(falco.http_output.enabled).toBe(true)
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Falco's own ${VAR} expansion, not a JS template.
    const tokenFromEnv = '?token=${NERVE_INGEST_TOKEN}'
    expect(falco.http_output.url).toContain(tokenFromEnv)
    expect(new URL(falco.http_output.url.replace(tokenFromEnv, '')).pathname).toBe('/v1/falco')
    const syscall = falco.append_output.find((a) => a.match?.source === 'syscall')
    expect(syscall?.extra_fields).toEqual(
      expect.arrayContaining(['k8s.ns.name', 'k8s.pod.name', 'container.image.repository']),
    )
  })
})
