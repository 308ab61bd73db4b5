// The README's configuration table is generated from the schema; this keeps the two in step.
// Regenerate with: node bin/nerve.mjs config --reference
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { configReferenceMarkdown } from '../../runtime/config-reference.ts'

const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8')

describe('README', () => {
  it('carries the configuration reference generated from schemas/config.schema.json', () => {
    const block = /<!-- config-reference:start -->\n([\s\S]*?)<!-- config-reference:end -->/.exec(readme)?.[1]
    expect(block).toBe(configReferenceMarkdown())
  })

  it('shows the two commands a newcomer needs', () => {
    expect(readme).toContain('npm install && npm start')
    expect(readme).toContain('npm test')
  })
})

describe('the config schema as documentation', () => {
  it('describes every key', () => {
    const undescribed = configReferenceMarkdown()
      .split('\n')
      .slice(2)
      .filter((row) => row.startsWith('|') && row.split('|')[4]?.trim() === '')
    expect(undescribed).toEqual([])
  })
})
