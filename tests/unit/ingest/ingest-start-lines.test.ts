// What ingest says when it starts: a partial `oidc_issuer` configuration (one cluster names its issuer, so
// IRSA from the others is silently no workload's), and how many credential links it holds.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../../helpers/random-names.ts'
import { startHarness } from './ingest-harness.ts'
import { chainedLink, issuedLink } from './irsa-links.ts'

const prodIssuer = 'oidc.eks.us-east-2.amazonaws.com/id/A8242F25BFBB8F98F5321B2AE63C8B5C'
const stagingIssuer = 'oidc.eks.us-east-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE'
const issuerWarnings = (logs: { msg: string }[]) => logs.filter((l) => /without oidc_issuer/.test(l.msg))

describe('ingest start', () => {
  it('warns once, naming the clusters without an oidc_issuer, when another cluster names one', async () => {
    const h = await startHarness({
      clusters: [
        { name: 'prod', hosts: ['prod-*'], oidc_issuer: prodIssuer },
        { name: 'staging', hosts: ['staging-*'] },
        { name: 'ci', hosts: ['ci-*'] },
      ],
    })
    const warnings = issuerWarnings(h.rt.logs)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ level: 'warn' })
    expect(warnings[0]?.msg).toContain('staging, ci')
    expect(warnings[0]?.msg).not.toContain('prod')
  })

  it('says nothing of issuers when every cluster names one, or none does', async () => {
    for (const clusters of [
      [
        { name: 'prod', hosts: ['prod-*'], oidc_issuer: prodIssuer },
        { name: 'staging', hosts: ['staging-*'], oidc_issuer: stagingIssuer },
      ],
      [
        { name: 'prod', hosts: ['prod-*'] },
        { name: 'staging', hosts: ['staging-*'] },
      ],
    ]) {
      const h = await startHarness({ clusters })
      expect(issuerWarnings(h.rt.logs)).toEqual([])
    }
  })

  it('reports the links it holds, not the lines of the links file', async () => {
    // The IRSA link of the IAM doc example's key, then three keys chained from it; one chained link per
    // workload is held (ingest.max_chained_links_per_workload: 1).
    const issued = issuedLink
    const chained = [1, 2, 3].map(chainedLink)
    const dataDir = tempDir('nerve-ingest')
    const lines = [issued, ...chained].map((l) => `${JSON.stringify(l)}\n`).join('')
    writeFileSync(join(dataDir, 'identity-links.ndjson'), lines)
    const h = await startHarness({ dataDir, maxChainedLinks: 1, now: () => issued.issued_at })
    const started = h.rt.logs.find((l) => l.msg === 'Ingest started.')
    expect(started).toMatchObject({ links: 2 })
  })
})
