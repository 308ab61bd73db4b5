// The documentation as a user meets it: a README short enough to read, whose two commands and abridged
// correlation are true; docs pages whose relative links (and their #anchors) all resolve; the
// configuration reference generated from the schema; and every example config accepted by the command
// examples/README.md gives, `nerve config`, which validates as `nerve run` does.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { configReferenceMarkdown } from '../../runtime/config-reference.ts'
import { loadConfig } from '../../runtime/load-config.ts'
import { validateEventBridgeEvent } from '../../schemas/input-validators.ts'
import { tempDir } from '../helpers/random-names.ts'

const root = resolve(import.meta.dirname, '../..')
const read = (path: string) => readFileSync(join(root, path), 'utf8')
const readme = read('README.md')
const exec = promisify(execFile)

/** Every Markdown file a reader can reach: the README, docs/, examples/ and the root community files. */
function markdownFiles(): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`)
  const more = ['CONTRIBUTING.md', 'CHANGELOG.md', 'SECURITY.md', 'examples/README.md']
  return ['README.md', ...docs, ...more.filter((f) => existsSync(join(root, f)))]
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = !fenced && /^#{1,6} (.*)$/.exec(line)
    if (!heading) continue
    const slug = (heading[1] as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replaceAll(' ', '-')
    anchors.add(slug)
  }
  return anchors
}

function relativeLinks(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '')
  const links = [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string)
  return links.filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l))
}

describe('README', () => {
  it('is short: what it is, quick start, try it, commands, where to read on', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(300)
    for (const section of ['## Quick start', '## Try it with real data', '## Commands', '## Documentation']) {
      expect(readme).toContain(section)
    }
  })

  it('shows the two commands a newcomer needs', () => {
    expect(readme).toContain('npm install && npm start')
    expect(readme).toContain('npm test')
  })

  it('abridges a correlation that the Try-it fixture really produces', () => {
    const block = /<!-- readme-correlation:start -->\n```json\n([\s\S]*?)```/.exec(readme)?.[1]
    const shown = JSON.parse(block as string)
    const golden = read('tests/fixtures/golden/agent-session.time-order.ndjson')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
    const real = golden.find((c) => c.id === shown.id)
    // When the golden replay output changes, abridge its iam:AttachRolePolicy line into the README again.
    expect(
      real,
      'README correlation id not in tests/fixtures/golden/agent-session.time-order.ndjson',
    ).toBeDefined()
    expect(real).toMatchObject({ ...shown, reasons: expect.arrayContaining(shown.reasons) })
  })
})

describe('documentation links', () => {
  it('resolves every relative link, and every #anchor in a Markdown target', () => {
    const broken: string[] = []
    for (const file of markdownFiles()) {
      for (const link of relativeLinks(read(file))) {
        const [path, anchor] = link.split('#') as [string, string | undefined]
        const target = path === '' ? join(root, file) : resolve(dirname(join(root, file)), path)
        if (!existsSync(target)) {
          broken.push(`${file}: ${link} (no ${relative(root, target)})`)
          continue
        }
        if (anchor && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(anchor)) {
          broken.push(`${file}: ${link} (no heading #${anchor})`)
        }
      }
    }
    expect(broken).toEqual([])
  })

  it('links the README to every docs page', () => {
    const pages = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md') && f !== 'README.md')
    const unlinked = pages.filter((p) => !readme.includes(`(docs/${p})`))
    expect(unlinked).toEqual([])
  })
})

describe('docs/configuration.md', () => {
  // Its sample of a file with mistakes lacked the `(did you mean "dry_run"?)` nerve prints.
  it('shows what nerve says of its sample file with mistakes, word for word', () => {
    const sample = /```\n\$ cat bad\.yaml\n([\s\S]*?)\$ nerve run --config bad\.yaml\n([\s\S]*?)```/.exec(
      read('docs/configuration.md'),
    )
    expect(sample).not.toBeNull()
    const file = join(tempDir('nerve-docs'), 'bad.yaml')
    writeFileSync(file, sample?.[1] ?? '')
    let said = ''
    try {
      loadConfig({ file, env: {} })
    } catch (err) {
      said = `nerve run: ${(err as Error).message.replace(file, 'bad.yaml')}\n`
    }
    expect(said).toBe(sample?.[2])
  })

  it('carries the reference generated from schemas/config.schema.json (nerve config --reference)', () => {
    const page = read('docs/configuration.md')
    const block = /<!-- config-reference:start -->\n([\s\S]*?)<!-- config-reference:end -->/.exec(page)?.[1]
    expect(block).toBe(configReferenceMarkdown())
  })

  it('describes every key', () => {
    const undescribed = configReferenceMarkdown()
      .split('\n')
      .slice(2)
      .filter((row) => row.startsWith('|') && row.split('|')[4]?.trim() === '')
    expect(undescribed).toEqual([])
  })
})

describe('the EventBridge rule docs/ingest.md gives', () => {
  // Anyone allowed events:PutEvents on the bus can send an event with CloudTrail's detail type and their
  // own source; nerve refuses it (only AWS uses `aws.` sources). A rule that passed it made a dead letter.
  const pattern = JSON.parse(/--event-pattern '([^']+)'/.exec(read('docs/ingest.md'))?.[1] ?? '{}') as Record<
    string,
    (string | { prefix: string })[]
  >
  /** EventBridge's matching for the two forms the rule uses: listed values, and `prefix`. */
  const ruleMatches = (event: Record<string, unknown>) =>
    Object.entries(pattern).every(([field, allowed]) =>
      allowed.some((a) =>
        typeof a === 'string' ? event[field] === a : String(event[field]).startsWith(a.prefix),
      ),
    )
  const call = JSON.parse(
    read('tests/fixtures/cloudtrail/envelopes/eventbridge-aws-api-call-via-cloudtrail-awsdocs.json'),
  )

  it('passes only the CloudTrail events nerve accepts', () => {
    const forged = { ...call, source: 'acme.forged' }
    for (const event of [call, { ...call, source: 'aws.iam' }, forged])
      expect(ruleMatches(event), event.source).toBe(validateEventBridgeEvent(event))
    expect(ruleMatches(forged)).toBe(false)
  })
})

describe('examples/', () => {
  const examples = readdirSync(join(root, 'examples')).filter((f) => /\.ya?ml$/.test(f))
  it('holds example configs', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4)
  })
  // examples/README.md tells a newcomer to check a file with this exact command: it must pass for each, as
  // written, file checks included (elasticsearch.yaml and kafka.yaml once named CA files under /etc/nerve/
  // that no newcomer has, and the command exited 1 on them while a check that skipped files passed).
  const command = /^node bin\/nerve\.mjs config --config examples\/\S+\.yaml$/m.exec(
    read('examples/README.md'),
  )
  it.each(examples)('%s passes the command examples/README.md gives, as written', async (name) => {
    expect(command?.[0]).toBeDefined()
    const [, ...args] = (command?.[0] ?? '').replace(/examples\/\S+\.yaml$/, `examples/${name}`).split(' ')
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NERVE_')))
    const run = await exec(process.execPath, args, { cwd: root, env }).then(
      (out) => ({ code: 0, ...out }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    )
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain('correlation:')
  })
})
