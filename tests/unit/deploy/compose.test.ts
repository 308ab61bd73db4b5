// docker-compose.yml, Dockerfile and deploy/ are checked as data: there is no Docker engine here, so
// `docker compose config` cannot run. Services, healthchecks, start order, volumes, port bindings, the
// secrets the stack makes for itself, and the wiring between them; the two deploy/compose scripts run.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { eventsTopic } from '../../../bus/topics.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { auth, startHarness } from '../ingest/ingest-harness.ts'

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
const oneShot = ['secrets', 'certs', 'kibana-password', 'setup']

/** The image's HEALTHCHECK command (Dockerfile), which the nerve services inherit. */
const imageHealthcheck = /^HEALTHCHECK [^\n]*\\\n\s*CMD (.+)$/m.exec(read('Dockerfile'))?.[1] ?? ''

/** A service's healthcheck command: its own, or the nerve image's when it sets none. */
const healthcheckOf = (s: Service) => {
  if (s.healthcheck?.disable) return undefined
  if (s.healthcheck?.test) return s.healthcheck.test.join(' ')
  return s.image === 'nerve:local' ? imageHealthcheck : undefined
}

/** The volume mounted at `path` in a service (`name:path[:ro]`), or undefined. */
const volumeAt = (s: Service, path: string) =>
  s.volumes?.map((v) => v.split(':')).find(([, target]) => target === path)?.[0]

describe('docker-compose.yml', () => {
  it('has Kafka, Elastic Security, Falco with its event generator, the demo feed, setup and the three stages', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'certs',
        'correlate',
        'demo-cloudtrail',
        'elasticsearch',
        'event-generator',
        'falco',
        'falcosidekick',
        'ingest',
        'kafka',
        'kibana',
        'kibana-password',
        'secrets',
        'setup',
        'sink',
      ].sort(),
    )
  })

  it('runs Kafka in KRaft mode, without ZooKeeper, its log dirs inside its volume', () => {
    const kafka = service('kafka')
    expect(kafka.image).toMatch(/^apache\/kafka:3\.\d+\.\d+$/)
    expect(String(kafka.environment?.KAFKA_PROCESS_ROLES)).toBe('broker,controller')
    expect(String(kafka.environment?.KAFKA_CONTROLLER_QUORUM_VOTERS)).toMatch(/^1@kafka:9093$/)
    expect(JSON.stringify(compose)).not.toMatch(/zookeeper/i)
    // Topics, offsets and the KRaft metadata live in log.dirs: every one of them must be on the volume.
    const dirs = String(kafka.environment?.KAFKA_LOG_DIRS).split(',')
    const mount = kafka.volumes?.find((v) => v.startsWith('kafka-data:'))?.split(':')[1] ?? '/nowhere'
    for (const dir of dirs) expect(dir === mount || dir.startsWith(`${mount}/`), dir).toBe(true)
    expect(compose.volumes).toHaveProperty('kafka-data')
  })

  it('publishes every port on 127.0.0.1 only', () => {
    const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p]))
    expect(published.length).toBeGreaterThan(0)
    for (const [name, port] of published)
      expect(withDefaults(String(port)), name).toMatch(/^127\.0\.0\.1:\d+:\d+$/)
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's own ${VAR:-default}, not a JS template.
    expect(service('ingest').ports).toEqual(['127.0.0.1:${NERVE_INGEST_PORT:-8080}:8080'])
  })

  it('gives every long-running service a healthcheck of what it serves', () => {
    for (const name of longRunning) expect(healthcheckOf(service(name)), name).toBeTruthy()
    const test = (name: string) => healthcheckOf(service(name)) ?? ''
    expect(test('kafka')).toContain('kafka-broker-api-versions.sh --bootstrap-server localhost:9092')
    expect(test('elasticsearch')).toContain('https://localhost:9200')
    expect(test('kibana')).toContain('/api/status')
    // The nerve services inherit the image's, which asks the port NERVE_HTTP_PORT says, not a fixed one.
    for (const name of ['ingest', 'correlate', 'sink']) {
      expect(service(name).healthcheck, name).toBeUndefined()
      expect(test(name)).toContain('/healthz')
      expect(test(name)).toContain('process.env.NERVE_HTTP_PORT')
    }
  })

  it('starts each service after what it needs, by conditions that can come true', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(s.depends_on ?? {})) {
        const target = service(dependency)
        if (condition === 'service_healthy')
          expect(healthcheckOf(target), `${name} → ${dependency}`).toBeTruthy()
        else if (condition === 'service_completed_successfully') expect(target.restart).toBe('no')
        else expect(condition, `${name} → ${dependency}`).toBe('service_started')
      }
    }
    for (const name of oneShot) expect(service(name).restart, name).toBe('no')
    expect(service('sink').depends_on).toMatchObject({
      kafka: { condition: 'service_healthy' },
      elasticsearch: { condition: 'service_healthy' },
      setup: { condition: 'service_completed_successfully' },
      secrets: { condition: 'service_completed_successfully' },
    })
    expect(service('setup').depends_on).toMatchObject({
      elasticsearch: { condition: 'service_healthy' },
      kibana: { condition: 'service_healthy' },
    })
    expect(service('elasticsearch').depends_on).toMatchObject({
      certs: { condition: 'service_completed_successfully' },
      secrets: { condition: 'service_completed_successfully' },
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

  it('runs Elastic Security: TLS and users on Elasticsearch, certificates from a one-shot, Kibana keys', () => {
    const es = service('elasticsearch').environment ?? {}
    expect(es).toMatchObject({
      'xpack.security.enabled': 'true',
      'xpack.security.http.ssl.enabled': 'true',
      ELASTIC_PASSWORD_FILE: '/run/nerve/elastic-password',
    })
    expect(volumeAt(service('elasticsearch'), '/usr/share/elasticsearch/config/certs')).toBe('es-certs')
    expect(volumeAt(service('certs'), '/usr/share/elasticsearch/config/certs')).toBe('es-certs')
    expect(String(service('certs').command)).toContain('elasticsearch-certutil')
    const kibana = service('kibana')
    const start = (kibana.entrypoint ?? []).join(' ')
    expect(start).toContain('XPACK_ENCRYPTEDSAVEDOBJECTS_ENCRYPTIONKEY')
    expect(start).toContain('/run/nerve/kibana-encryption-key')
    expect(kibana.environment).toMatchObject({ ELASTICSEARCH_USERNAME: 'kibana_system' })
    expect(String(service('kibana-password').command)).toContain('_security/user/kibana_system/_password')
  })

  it('wires the nerve services to Kafka, Elasticsearch (with credentials and the CA) and Kibana by service name', () => {
    for (const name of nerveServices) {
      const s = service(name)
      const env = s.environment ?? {}
      expect(env.NERVE_KAFKA_BROKERS).toBe('kafka:9092')
      expect(env.NERVE_ELASTICSEARCH_URL).toBe('https://elasticsearch:9200')
      expect(env.NERVE_ELASTICSEARCH_USERNAME).toBe('elastic')
      expect(env.NERVE_KIBANA_URL).toBe('https://kibana:5601')
      expect(env.NERVE_HTTP_HOST).toBe('0.0.0.0')
      expect(String(env.NERVE_ELASTICSEARCH_CA_FILE).startsWith('/certs/')).toBe(true)
      expect(volumeAt(s, '/certs')).toBe('es-certs')
      expect(volumeAt(s, '/run/nerve')).toBe('nerve-secrets')
    }
    expect(String(service('kafka').environment?.KAFKA_ADVERTISED_LISTENERS)).toContain(
      'PLAINTEXT://kafka:9092',
    )
  })

  it('has no default ingest token: one is generated into the secrets volume and read from it', () => {
    expect(read('docker-compose.yml')).not.toMatch(/NERVE_INGEST_TOKEN:-|nerve-dev-ingest-token/)
    expect(volumeAt(service('secrets'), '/run/nerve')).toBe('nerve-secrets')
    expect(service('secrets').entrypoint).toEqual(['node', 'deploy/compose/make-secrets.mjs', '/run/nerve'])
    for (const name of nerveServices) {
      expect(service(name).environment?.NERVE_INGEST_TOKEN_FILE).toBe('/run/nerve/ingest-token')
    }
    for (const name of ['falcosidekick', 'falco']) {
      expect((service(name).entrypoint ?? []).join(' '), name).toContain('cat /run/nerve/ingest-token')
      expect(volumeAt(service(name), '/run/nerve'), name).toBe('nerve-secrets')
    }
  })

  it('gives each stage its own data volume', () => {
    for (const name of ['ingest', 'correlate', 'sink']) {
      expect(service(name).volumes).toContain(`${name}-data:/data`)
      expect(compose.volumes).toHaveProperty(`${name}-data`)
    }
    for (const s of Object.values(services)) {
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0] as string
        if (!source.startsWith('.') && !source.startsWith('/')) expect(compose.volumes).toHaveProperty(source)
        else if (source.startsWith('.')) expect(existsSync(join(root, source)), source).toBe(true)
      }
    }
  })

  it('loads a valid config in every nerve service (deploy/nerve.yaml plus the compose environment)', () => {
    const secrets = tempDir('nerve-compose-secrets')
    execFileSync(process.execPath, [join(root, 'deploy/compose/make-secrets.mjs'), secrets])
    for (const name of nerveServices) {
      const s = service(name)
      const env = Object.fromEntries(
        Object.entries(s.environment ?? {}).map(([k, v]) => [
          k,
          withDefaults(v).replace('/run/nerve', secrets),
        ]),
      )
      const mounted = s.volumes?.find((v) => v.endsWith(`:${env.NERVE_CONFIG}:ro`))
      expect(mounted, name).toBe('./deploy/nerve.yaml:/etc/nerve/nerve.yaml:ro')
      // The CA file is the Elasticsearch container's, mounted into nerve's: not on this machine.
      const config = loadConfig({
        env: { ...env, NERVE_CONFIG: join(root, 'deploy/nerve.yaml') },
        fileProblem: () => undefined,
      })
      expect(config.kafka.brokers).toEqual(['kafka:9092'])
      expect(config.ingest.token).toBe(readFileSync(join(secrets, 'ingest-token'), 'utf8').trim())
      expect(config.sinks.elasticsearch).toMatchObject({ username: 'elastic', ca_file: '/certs/ca/ca.crt' })
      expect(config.sinks.elasticsearch.password).toBe(
        readFileSync(join(secrets, 'elastic-password'), 'utf8').trim(),
      )
      expect(config.agents.map((a) => a.id)).toContain('nerve-demo')
    }
  })

  it('makes the secrets once, a token Falcosidekick can carry, and keeps them on the next start', () => {
    const dir = tempDir('nerve-compose-secrets')
    execFileSync(process.execPath, [join(root, 'deploy/compose/make-secrets.mjs'), dir])
    const first = Object.fromEntries(
      ['ingest-token', 'elastic-password', 'kibana-password', 'kibana-encryption-key'].map((f) => [
        f,
        readFileSync(join(dir, f), 'utf8').trim(),
      ]),
    )
    expect(first['ingest-token']).toMatch(/^nrv_[A-Za-z0-9_-]{32}$/)
    expect((first['kibana-encryption-key'] ?? '').length).toBeGreaterThanOrEqual(32)
    execFileSync(process.execPath, [join(root, 'deploy/compose/make-secrets.mjs'), dir])
    expect(readFileSync(join(dir, 'ingest-token'), 'utf8').trim()).toBe(first['ingest-token'])
  })

  it('points Falcosidekick at /v1/falco on the ingest service with the generated bearer token', () => {
    const s = service('falcosidekick')
    expect(s.environment?.WEBHOOK_ADDRESS).toBe('http://ingest:8080/v1/falco')
    expect((s.entrypoint ?? []).join(' ')).toContain(
      'WEBHOOK_CUSTOMHEADERS="Authorization:Bearer $$(cat /run/nerve/ingest-token)"',
    )
  })

  it('runs Falco with deploy/falco/falco-nerve.yaml, an event generator, and a demo CloudTrail feed', () => {
    const falco = service('falco')
    expect(falco.image).toMatch(/^falcosecurity\/falco:0\.(4\d|[5-9]\d)\.\d+$/)
    expect(falco.volumes).toContain('./deploy/falco/falco-nerve.yaml:/etc/falco/config.d/nerve.yaml:ro')
    expect(service('event-generator').image).toMatch(/^falcosecurity\/event-generator:\d+\.\d+\.\d+$/)
    expect(service('event-generator').command?.slice(0, 2)).toEqual(['run', 'syscall'])
    const demo = service('demo-cloudtrail')
    expect(demo.entrypoint).toEqual(['node', 'deploy/compose/demo-cloudtrail.mjs'])
    expect(demo.environment?.NERVE_INGEST_URL).toBe('http://ingest:8080/v1/cloudtrail')
  })
})

describe('deploy/compose/demo-cloudtrail.mjs', () => {
  it('posts a CloudTrail record nerve accepts, by the demo agent, dated now', async () => {
    const bodies: string[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => {
        body += c
      })
      req.on('end', () => {
        bodies.push(body)
        res.writeHead(202).end('{"accepted":1}')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const secrets = tempDir('nerve-demo-secrets')
    execFileSync(process.execPath, [join(root, 'deploy/compose/make-secrets.mjs'), secrets])
    const port = (server.address() as AddressInfo).port
    const child = spawn(process.execPath, [join(root, 'deploy/compose/demo-cloudtrail.mjs')], {
      env: {
        NERVE_INGEST_URL: `http://127.0.0.1:${port}/v1/cloudtrail`,
        NERVE_INGEST_TOKEN_FILE: join(secrets, 'ingest-token'),
        DEMO_INTERVAL_MS: '600000',
      },
      stdio: 'ignore',
    })
    try {
      await waitFor(() => bodies.length > 0, { what: 'the demo record' })
    } finally {
      child.kill()
      server.close()
    }
    const h = await startHarness({
      agents: loadConfig({ file: join(root, 'deploy/nerve.yaml'), env: {} }).agents,
    })
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail',
      payload: bodies[0],
      headers: auth,
    })
    expect(res.statusCode).toBe(202)
    const [event] = h.bus.records(eventsTopic).map((r) => r.value as NormalizedEvent)
    expect(event?.agent.id).toBe('nerve-demo')
    expect(event?.core?.action).toBe('cloudtrail:StopLogging')
    expect(Math.abs((event?.time ?? 0) - Date.now())).toBeLessThan(120_000)
  })
})

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile')
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))

  it('builds on a maintained Node.js LTS with build tools for better-sqlite3, only runtime dependencies', () => {
    // Node 20 reached its end of life in April 2026; 22 and 24 are maintained LTS lines.
    expect(dockerfile.match(/^FROM node:(22|24)-[^\s]*/gm)?.length).toBe(2)
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
      'nerve-replay.ts',
      'runtime',
      'schemas',
      'bus',
      'ingest',
      'correlate',
      'sinks',
      'dashboards',
      'deploy',
      'package.json',
      'tsconfig.json',
      'LICENSE',
    ]) {
      expect(ignored, needed).not.toContain(needed)
    }
    expect(ignored).toEqual(
      expect.arrayContaining(['node_modules', 'tests', '.git', 'data', 'docs', 'examples', 'README.md']),
    )
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
    const url = new URL(falco.http_output.url.replace(tokenFromEnv, ''))
    expect(url.pathname).toBe('/v1/falco')
    // The host is the compose service that receives alerts, on the port it listens on inside the network.
    expect(services[url.hostname]?.command).toEqual(['ingest'])
    expect(url.port).toBe(String(service('ingest').environment?.NERVE_HTTP_PORT))
    // suggested_output needs Falco 0.40: the file says so, and the compose Falco is at least that.
    expect(falco.append_output.some((a) => a.suggested_output)).toBe(true)
    expect(read('deploy/falco/falco-nerve.yaml')).toMatch(/Falco 0\.40 or later/)
    const syscall = falco.append_output.find((a) => a.match?.source === 'syscall')
    expect(syscall?.extra_fields).toEqual(
      expect.arrayContaining(['k8s.ns.name', 'k8s.pod.name', 'container.image.repository']),
    )
  })
})
