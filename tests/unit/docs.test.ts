// The documentation as a user meets it: a README short enough to read, whose two commands and abridged
// correlation are true; docs pages whose relative links (and their #anchors) all resolve; the
// configuration reference generated from the schema; and every example config accepted by the same
// validation as `nerve config` and `nerve run`.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { correlatorConfigOf } from '../../correlate/correlator-config.ts'
import { configReferenceMarkdown } from '../../runtime/config-reference.ts'
import { loadConfig } from '../../runtime/load-config.ts'

const root = resolve(import.meta.dirname, '../..')
const read = (path: string) => readFileSync(join(root, path), 'utf8')
const readme = read('README.md')

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

describe('examples/', () => {
  const examples = readdirSync(join(root, 'examples')).filter((f) => /\.ya?ml$/.test(f))
  it('holds example configs', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4)
  })
  it.each(examples)('%s passes the validation of `nerve config` and `nerve run`', (name) => {
    const file = join(root, 'examples', name)
    expect(statSync(file).isFile()).toBe(true)
    // The CA files they name are the deployment's (/etc/nerve/…), not this machine's.
    const config = loadConfig({ file, env: {}, fileProblem: () => undefined })
    expect(() => correlatorConfigOf(config)).not.toThrow()
  })
})
