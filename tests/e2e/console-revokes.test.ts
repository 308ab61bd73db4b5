// The console's incident view of an incident the watched agent flooded with held-back revoke outcomes, in
// a real headless Chromium: the revoke that went ahead is on the page with the counts per status, the
// held-back ones show their newest few, and "Older suppressed outcomes" pages through the rest.
import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../runtime/http-server.ts'
import { loadConfig } from '../../runtime/load-config.ts'
import type { RevokeOutcome } from '../../schemas/types.ts'
import { consoleRoutes } from '../../sinks/console-routes.ts'
import { createCorrelationStore } from '../../sinks/correlation-store.ts'
import { maxIncidentRevokesPerStatus } from '../../sinks/store-reads.ts'
import { tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { makeCorrelation } from '../unit/sinks/correlation-fixture.ts'

const chromiumPath = process.env.NERVE_CHROMIUM ?? '/usr/bin/chromium'
const closing: (() => Promise<void>)[] = []
let browser: Browser | undefined
afterAll(async () => {
  await browser?.close()
  for (const close of closing.splice(0)) await close()
})

const incidentId = 'inc-data-cleaner-flood'
const start = Date.UTC(2026, 10, 25, 16, 1, 30)
const outcome = (n: number, status: RevokeOutcome['status'], reason: string): RevokeOutcome => ({
  id: `rvk_${String(n).padStart(6, '0')}:0`,
  decision_id: `rvk_${String(n).padStart(6, '0')}`,
  time: start + n * 10,
  correlation_id: makeCorrelation(0).id,
  incident_id: incidentId,
  agent_id: 'data-cleaner',
  status,
  reason,
  attempts: status === 'sent' ? 1 : 0,
  ...(status === 'sent' ? { http_status: 204, target: 'https://hooks.example/revoke' } : {}),
})

describe('the console, an incident flooded with held-back revokes', { timeout: 90_000 }, () => {
  it('shows the revoke that went ahead, the counts, and pages the held-back ones', async () => {
    expect(existsSync(chromiumPath), `Chromium at ${chromiumPath} (.ci/run installs it)`).toBe(true)
    const rt = createTestRuntime()
    const store = createCorrelationStore(
      { data_dir: tempDir('nerve-console-revokes') },
      { metrics: rt.metrics },
    )
    closing.push(() => store.close())
    store.writeCorrelations([makeCorrelation(0, { incident: { id: incidentId } })])
    const held = Array.from({ length: 120 }, (_, n) => outcome(n + 1, 'suppressed', 'rate_limited_agent'))
    store.writeOutcomes([outcome(0, 'sent', 'delivered'), ...held])
    const server = createHttpServer(
      { ...loadConfig().http, port: 0 },
      { log: rt.log, metrics: rt.metrics, ingestToken: 'x' },
    )
    server.addRoutes([...consoleRoutes(), ...store.routes])
    const url = await server.listen()
    closing.push(() => server.close())

    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
    const page = await browser.newPage()
    const failed: string[] = []
    page.on('pageerror', (err) => failed.push(err.message))
    await page.goto(`${url}/#/incident/${incidentId}`)
    const rows = page.locator('#revokes tbody tr')
    await rows.first().waitFor()
    expect(await rows.count()).toBe(maxIncidentRevokesPerStatus + 1)
    const text = (await page.locator('main').textContent()) ?? ''
    expect(text).toContain('Revoke decisions (sent 1, suppressed 120)')
    expect(await page.locator('#revokes .status-sent').textContent()).toBe('sent')

    const older = page.locator('button[data-status="suppressed"]')
    await older.click()
    await page.waitForFunction(
      `document.querySelectorAll('#revokes tbody tr').length === ${maxIncidentRevokesPerStatus + 1 + 50}`,
    )
    // 20 + 50 + 50: the last page says no more, and the button goes.
    await older.click()
    await older.waitFor({ state: 'detached' })
    expect(await rows.count()).toBe(121)
    expect(failed).toEqual([])
  })
})
