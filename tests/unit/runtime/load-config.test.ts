import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isNerveError } from '../../../runtime/errors.ts'
import { loadConfig, redactSecrets } from '../../../runtime/load-config.ts'
import { tempDir } from '../../helpers/random-names.ts'

const writeConfig = (yaml: string): string => {
  const file = join(tempDir(), 'nerve.yaml')
  writeFileSync(file, yaml)
  return file
}

/** The Standard Webhooks reference library's test secret: 24 bytes. */
const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'

/** A file that exists, for the keys that name one. */
const realFile = (name: string): string => {
  const path = join(tempDir(), name)
  writeFileSync(path, '-----BEGIN CERTIFICATE-----\n')
  return path
}

const loadError = (fn: () => unknown) => {
  try {
    fn()
  } catch (err) {
    if (isNerveError(err)) return err
    throw err
  }
  throw new Error('expected loadConfig to throw')
}

describe('loadConfig', () => {
  it('gives a complete config with no file at all', () => {
    const config = loadConfig()
    expect(config.data_dir).toBe('./data')
    expect(config.http).toMatchObject({ host: '127.0.0.1', port: 8080 })
    expect(config.correlation.window).toEqual({ before: 120_000, after: 900_000, grace: 1_200_000 })
    expect(config.revoke).toMatchObject({ min_score: 70, dry_run: false, webhooks: [] })
  })

  it('reads the DESIGN.md example as written, durations in milliseconds', () => {
    const file = writeConfig(`
agents:
  - id: data-cleaner
    protected: false
    match:
      k8s: [{ namespace: agents, pod: "data-cleaner-*" }, { namespace: agents, service_account: data-cleaner }]
      images: ["ghcr.io/acme/data-cleaner*"]
      hosts: ["ip-10-0-1-23.ec2.internal"]
      aws: ["arn:aws:iam::123456789012:role/data-cleaner"]
      access_keys: ["AKIAIOSFODNN7EXAMPLE"]
correlation:
  window: { before: 2m, after: 15m, grace: 20m }
  rules:
    - id: outbound-then-iam-write
      edge: { rules: ["*outbound*"], min_priority: warning }
      core: { actions: ["iam:Attach*", "iam:Put*Policy"], read_only: false }
      window: { before: 1m, after: 600000 }
      severity: 80
      revoke: true
revoke:
  webhooks: [{ url: "https://hooks.example/revoke", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }]
  min_score: 70
  dry_run: false
  self_identities: ["arn:aws:iam::123456789012:role/nerve-revoker"]
`)
    const config = loadConfig({ file })
    expect(config.agents[0]?.match.k8s?.[0]).toEqual({ namespace: 'agents', pod: 'data-cleaner-*' })
    expect(config.correlation.rules?.[0]?.window).toEqual({ before: 60_000, after: 600_000 })
    expect(config.revoke.webhooks[0]).toMatchObject({ timeout: 10_000, concurrency: 4 })
    expect(config.revoke.rate_limit.per_agent).toEqual({ count: 1, per: 3_600_000 })
    expect(Object.isFrozen(config.correlation.rules?.[0])).toBe(true)
  })

  it('lets NERVE_* variables override the file', () => {
    const file = writeConfig('http: { port: 9000 }\n')
    const config = loadConfig({
      file,
      env: {
        NERVE_HTTP_PORT: '9443',
        NERVE_DATA_DIR: '/var/lib/nerve',
        NERVE_KAFKA_BROKERS: 'k1:9092, k2:9092',
        NERVE_ELASTICSEARCH_URL: 'http://127.0.0.1:9200',
        NERVE_REVOKE_WEBHOOK_URL: 'http://127.0.0.1:9999/revoke',
        NERVE_REVOKE_WEBHOOK_SECRET: secret,
      },
    })
    expect(config.http.port).toBe(9443)
    expect(config.data_dir).toBe('/var/lib/nerve')
    expect(config.kafka.brokers).toEqual(['k1:9092', 'k2:9092'])
    expect(config.sinks.elasticsearch.url).toBe('http://127.0.0.1:9200')
    expect(config.revoke.webhooks).toEqual([
      expect.objectContaining({ url: 'http://127.0.0.1:9999/revoke', secret }),
    ])
  })

  it('names every problem at once, with its path', () => {
    const file = writeConfig(`
http: { port: "eighty" }
correlation:
  window: { before: 2 minutes }
  rules: [{ id: "Bad Id", severity: 300 }]
revoke: { min_score: 70, dryrun: true }
`)
    const err = loadError(() => loadConfig({ file }))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.details).toEqual(
      expect.arrayContaining([
        { path: '/http/port', message: 'must be integer' },
        { path: '/correlation/window/before', message: expect.stringContaining('must be a duration') },
        { path: '/correlation/rules/0/id', message: expect.stringContaining('must match pattern') },
        { path: '/correlation/rules/0/severity', message: 'must be <= 100' },
        { path: '/revoke', message: 'unknown key "dryrun" (did you mean "dry_run"?)' },
      ]),
    )
    expect(err.message).toContain(file)
  })

  it('refuses a duration that would arm a timer Node.js cannot, in either form, and any beyond 100 years', () => {
    // Node.js fires a timer of more than 2^31 - 1 ms (24.8 days) after 1 ms: a 30-day webhook timeout
    // would time every revoke out at once, a 30-day backoff retry in a busy loop.
    const file = writeConfig(`
ingest: { s3_sqs: { wait_time: 30s, visibility_timeout: 13h } }
correlation: { incident_gap: 99999999999999999999d }
revoke:
  max_backoff: 30d
  webhooks: [{ url: "https://hooks.example.com/revoke", timeout: 2592000000 }]
`)
    const err = loadError(() => loadConfig({ file }))
    expect(err.details).toEqual([
      { path: '/ingest/s3_sqs/wait_time', message: 'must be at most 20s' },
      { path: '/ingest/s3_sqs/visibility_timeout', message: 'must be at most 12h' },
      { path: '/correlation/incident_gap', message: 'must be at most 36500d' },
      { path: '/revoke/webhooks/0/timeout', message: 'must be at most 24d' },
      { path: '/revoke/max_backoff', message: 'must be at most 24d' },
    ])
    const atTheLimits = writeConfig('revoke: { max_backoff: 24d }\nbus: { retention: 36500d }\n')
    expect(loadConfig({ file: atTheLimits })).toMatchObject({
      revoke: { max_backoff: 24 * 86_400_000 },
      bus: { retention: 36_500 * 86_400_000 },
    })
  })

  it("refuses a cluster's oidc_issuer that is not an issuer's host and path, or that another cluster names", () => {
    const issuer = 'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE'
    const file = writeConfig(
      [
        'clusters:',
        `  - { name: prod, hosts: [], oidc_issuer: "https://${issuer}" }`,
        `  - { name: arn, hosts: [], oidc_issuer: "arn:aws:iam::123456789012:oidc-provider/${issuer}" }`,
        `  - { name: good, hosts: [], oidc_issuer: "${issuer}" }`,
      ].join('\n'),
    )
    const err = loadError(() => loadConfig({ file }))
    expect(err?.message).toMatch(/\/clusters\/0\/oidc_issuer: must match pattern/)
    expect(err?.message).toMatch(/\/clusters\/1\/oidc_issuer: must match pattern/)
    const twice = writeConfig(
      [
        'clusters:',
        `  - { name: prod, hosts: [], oidc_issuer: "${issuer}" }`,
        `  - { name: staging, hosts: [], oidc_issuer: "${issuer}" }`,
      ].join('\n'),
    )
    expect(loadError(() => loadConfig({ file: twice }))?.message).toMatch(
      /\/clusters\/1\/oidc_issuer: is already the issuer of cluster prod/,
    )
    const fine = writeConfig(`clusters:\n  - { name: prod, hosts: [], oidc_issuer: "${issuer}" }\n`)
    expect(loadConfig({ file: fine }).clusters[0]?.oidc_issuer).toBe(issuer)
  })

  it('reports YAML syntax errors with their line', () => {
    const file = writeConfig('agents:\n  - id: a\n   protected: true\n')
    const err = loadError(() => loadConfig({ file }))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.message).toMatch(/not valid YAML[\s\S]*line 3/)
  })

  it('refuses the webhook secrets, TLS files and key pairs `nerve run` would refuse, each with its path', () => {
    const file = writeConfig(`
revoke:
  webhooks:
    - { url: "https://hooks.example/revoke", secret: "whsec_..." }
    - { url: "https://hooks.example/short", secrets: ["${secret}", "whsec_c2hvcnQ="] }
    - { url: "http://hooks.example/plain", cert_file: "${realFile('client.crt')}", key_file: "${realFile('client.key')}" }
    - { url: "https://hooks.example/half", cert_file: "${realFile('client.crt')}" }
`)
    const err = loadError(() => loadConfig({ file }))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.message).toContain(`Configuration in ${file} is invalid:`)
    expect(err.details).toEqual([
      {
        path: '/revoke/webhooks/0/secret',
        message: expect.stringMatching(/^must be whsec_ followed by base64 .*openssl rand -base64 32/),
      },
      {
        path: '/revoke/webhooks/1/secrets/1',
        message: expect.stringMatching(/^must decode to at least 24 bytes .*decodes to 5/),
      },
      { path: '/revoke/webhooks/2/cert_file', message: 'needs an https:// url' },
      { path: '/revoke/webhooks/2/key_file', message: 'needs an https:// url' },
      { path: '/revoke/webhooks/3/cert_file', message: 'needs key_file too (a client certificate)' },
    ])
  })

  // A target disabled by a 410 is remembered by its label (the URL without credentials or query): two
  // targets under one label would share one disablement, and the second's entry would enable the first.
  it('refuses two webhook targets with the same label (the URL without credentials or query), and a URL that is none', () => {
    const file = writeConfig(`
revoke:
  webhooks:
    - { url: "https://hooks.example/revoke?access_token=one", secret: "${secret}" }
    - { url: "https://hooks.example/other" }
    - { url: "https://ops:pw@HOOKS.example:443/revoke?access_token=two" }
    - { url: "https://" }
`)
    const err = loadError(() => loadConfig({ file }))
    expect(err.details).toEqual([
      {
        path: '/revoke/webhooks/2/url',
        message:
          'is the same target as /revoke/webhooks/0 (https://hooks.example/revoke): nerve knows a target by its URL without credentials or query, so these two would share one (a 410 from one would disable both); give each receiver its own path',
      },
      { path: '/revoke/webhooks/3/url', message: 'is not a URL' },
    ])
  })

  // Two registry entries under one id were taken silently: which entry's `protected` counts, and which
  // identifiers name the agent, then depended on where each entry sat in the file.
  it('refuses two registry entries with the same agent id, naming both', () => {
    const file = writeConfig(`
agents:
  - id: data-cleaner
    match: { k8s: [{ namespace: agents, pod: "data-cleaner-*" }] }
  - id: api-contact
    match: { aws: ["arn:aws:iam::123456789012:role/api-contact"] }
  - id: data-cleaner
    protected: true
    match: { aws: ["arn:aws:iam::123456789012:role/data-cleaner"] }
`)
    const err = loadError(() => loadConfig({ file }))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.details).toEqual([
      {
        path: '/agents/2/id',
        message:
          'is "data-cleaner", the id of /agents/0 too: an agent is one entry, so put both match lists in one (and say protected there)',
      },
    ])
    expect(err.message).toContain('/agents/2/id')
    expect(err.message).toContain('/agents/0')
  })

  it('names the key of a TLS file that is not there, or is a directory', () => {
    const dir = tempDir()
    const file = writeConfig(
      `http: { tls: { cert_file: /nonexistent/server.pem, key_file: "${dir}" } }\n` +
        `sinks: { elasticsearch: { ca_file: "${realFile('ca.pem')}" } }\n`,
    )
    const err = loadError(() => loadConfig({ file }))
    expect(err.details).toEqual([
      { path: '/http/tls/cert_file', message: '/nonexistent/server.pem: no such file' },
      { path: '/http/tls/key_file', message: `${dir} is not a file` },
    ])
  })

  it('blames a problem on the NERVE_* variable that set it, not on the file', () => {
    const file = writeConfig('http: { port: 9000 }\n')
    const err = loadError(() =>
      loadConfig({ file, env: { NERVE_INGEST_TOKEN: 'short-token', NERVE_HTTP_PORT: 'abc' } }),
    )
    expect(err.message).toMatch(/^Configuration is invalid:/)
    expect(err.details).toEqual([
      { path: '/http/port', message: 'must be integer (from NERVE_HTTP_PORT)' },
      {
        path: '/ingest/token',
        message: 'must NOT have fewer than 16 characters (from NERVE_INGEST_TOKEN)',
      },
    ])
    const ca = loadError(() => loadConfig({ env: { NERVE_ELASTICSEARCH_CA_FILE: '/nonexistent/ca.pem' } }))
    expect(ca.details).toEqual([
      {
        path: '/sinks/elasticsearch/ca_file',
        message: '/nonexistent/ca.pem: no such file (from NERVE_ELASTICSEARCH_CA_FILE)',
      },
    ])
    const hook = loadError(() =>
      loadConfig({
        env: {
          NERVE_REVOKE_WEBHOOK_URL: 'https://hooks.example/r',
          NERVE_REVOKE_WEBHOOK_SECRET: 'whsec_AAAA',
        },
      }),
    )
    expect(hook.details).toEqual([
      {
        path: '/revoke/webhooks/0/secret',
        message: expect.stringMatching(/decodes to 3 .*\(from NERVE_REVOKE_WEBHOOK_SECRET\)$/),
      },
    ])
  })

  it('refuses NERVE_REVOKE_WEBHOOK_SECRET without NERVE_REVOKE_WEBHOOK_URL, naming both', () => {
    const file = writeConfig(
      `revoke: { webhooks: [{ url: "https://hooks.example/r", secret: "${secret}" }] }\n`,
    )
    const err = loadError(() => loadConfig({ file, env: { NERVE_REVOKE_WEBHOOK_SECRET: secret } }))
    expect(err.details).toEqual([
      {
        path: '/revoke/webhooks',
        message: expect.stringMatching(
          /^NERVE_REVOKE_WEBHOOK_SECRET is set but NERVE_REVOKE_WEBHOOK_URL is not/,
        ),
      },
    ])
  })

  it('says so when the file cannot be read', () => {
    const err = loadError(() => loadConfig({ file: '/nonexistent/nerve.yaml' }))
    expect(err.message).toContain('Cannot read config file /nonexistent/nerve.yaml')
  })
})

describe('redactSecrets', () => {
  it('masks tokens, passwords, secrets and API keys and keeps the rest', () => {
    const config = loadConfig({
      env: {
        NERVE_INGEST_TOKEN: 'nrv_0123456789abcdefXYZ',
        NERVE_REVOKE_WEBHOOK_URL: 'http://127.0.0.1:1/r',
        NERVE_REVOKE_WEBHOOK_SECRET: secret,
      },
    })
    const shown = redactSecrets(config) as typeof config
    expect(shown.ingest.token).toBe('***')
    expect(shown.revoke.webhooks[0]).toMatchObject({ url: 'http://127.0.0.1:1/r', secret: '***' })
    expect(JSON.stringify(shown)).not.toContain(secret.slice(6))
  })

  it('masks credentials inside URLs: a password in the user info, tokens in the query', () => {
    const config = loadConfig({
      env: {
        NERVE_ELASTICSEARCH_URL: 'https://elastic:changeme-4f9a@es.internal:9200',
        NERVE_REVOKE_WEBHOOK_URL: 'https://hooks.example/revoke?access_token=xoxb-1234&team=sec',
        NERVE_REVOKE_WEBHOOK_SECRET: `whsec_${Buffer.alloc(24, 1).toString('base64')}`,
      },
    })
    const shown = JSON.stringify(redactSecrets(config))
    expect(shown).not.toContain('changeme-4f9a')
    expect(shown).not.toContain('xoxb-1234')
    expect(shown).toContain('https://elastic:***@es.internal:9200')
    expect(shown).toContain('https://hooks.example/revoke?access_token=***&team=sec')
  })
})
