// The environment variables nerve reads are one table (runtime/config-env.ts): the docs and `nerve run
// --help` are written from it, and a variable the code reads but the table does not list fails here.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { commandHelp } from '../../../runtime/cli-help.ts'
import { envReferenceMarkdown, envVariables } from '../../../runtime/config-env.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { tempDir } from '../../helpers/random-names.ts'

const root = resolve(import.meta.dirname, '../../..')
const listed = envVariables.map((v) => v.name)

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path)
    return /\.(ts|mjs)$/.test(path) ? [path] : []
  })
}

describe('environment variables', () => {
  it('lists every NERVE_* variable the code reads', () => {
    const files = [
      'nerve.ts',
      'nerve-replay.ts',
      ...['bin', 'runtime', 'bus', 'ingest', 'correlate', 'sinks'].flatMap(sourceFiles),
    ]
    const read = new Set(
      files.flatMap((f) =>
        [...readFileSync(join(root, f), 'utf8').matchAll(/\b(NERVE_[A-Z][A-Z0-9_]*)\b/g)].map((m) => m[1]),
      ),
    )
    expect([...read].filter((name) => !listed.includes(name as string))).toEqual([])
  })

  it('are the table of docs/configuration.md and the list of `nerve run --help`', () => {
    const page = readFileSync(join(root, 'docs/configuration.md'), 'utf8')
    const block = /<!-- environment:start -->\n([\s\S]*?)<!-- environment:end -->/.exec(page)?.[1]
    expect(block).toBe(envReferenceMarkdown())
    for (const name of listed) expect(commandHelp.run.help).toContain(name)
  })

  it('each set the key the table says', () => {
    const dir = tempDir()
    const secretFile = join(dir, 'password')
    const tokenFile = join(dir, 'token')
    for (const [file, text] of [
      [secretFile, 'elastic-password\n'],
      [tokenFile, 'nrv_from_a_secret_file\n'],
    ] as const)
      writeFileSync(file, text)
    const config = loadConfig({
      env: {
        NERVE_INGEST_TOKEN_FILE: tokenFile,
        NERVE_ELASTICSEARCH_URL: 'https://es.internal:9200',
        NERVE_ELASTICSEARCH_USERNAME: 'elastic',
        NERVE_ELASTICSEARCH_PASSWORD_FILE: secretFile,
        NERVE_ELASTICSEARCH_CA_FILE: secretFile,
        NERVE_KIBANA_URL: 'https://kibana.internal:5601',
        NERVE_LOG_LEVEL: 'debug',
      },
    })
    expect(config.ingest.token).toBe('nrv_from_a_secret_file')
    expect(config.sinks.elasticsearch).toMatchObject({
      url: 'https://es.internal:9200',
      username: 'elastic',
      password: 'elastic-password',
      ca_file: secretFile,
    })
    expect(config.sinks.kibana.url).toBe('https://kibana.internal:5601')
    expect(config.log.level).toBe('debug')
  })
})
