// The console's incident view of an incident the watched agent flooded with held-back revoke outcomes, in
// a real headless Chromium: the revoke that went ahead is on the page with the counts per status, the
// held-back ones show their newest few, and "Older suppressed outcomes" pages through the rest. And the
// "Older …" buttons: a double click asked for the same page twice (same cursor) and appended its rows
// twice, in the incident list ("Older incidents") and in an incident's revoke outcomes; with older pages
// loaded, each 5 s refresh still read the incident's whole detail and threw it away.
import { existsSync } from 'node:fs'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../runtime/http-server.ts'
import { loadConfig } from '../../runtime/load-config.ts'
import type { Correlation, RevokeOutcome } from '../../schemas/types.ts'
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
  time: start + n * 1000,
  correlation_id: makeCorrelation(0).id,
  incident_id: incidentId,
  agent_id: 'data-cleaner',
  status,
  reason,
  attempts: status === 'sent' ? 1 : 0,
  ...(status === 'sent' ? { http_status: 204, target: 'https://hooks.example/revoke' } : {}),
})

/** A console over a store holding `correlations` and `outcomes`, in a page of the shared browser. */
async function openConsole(correlations: Correlation[], outcomes: RevokeOutcome[]) {
  expect(existsSync(chromiumPath), `Chromium at ${chromiumPath} (.ci/run installs it)`).toBe(true)
  const rt = createTestRuntime()
  const store = createCorrelationStore(
    { data_dir: tempDir('nerve-console-revokes') },
    { metrics: rt.metrics },
  )
  closing.push(() => store.close())
  store.writeCorrelations(correlations)
  store.writeOutcomes(outcomes)
  const server = createHttpServer(
    { ...loadConfig().http, port: 0 },
    { log: rt.log, metrics: rt.metrics, ingestToken: 'x' },
  )
  server.addRoutes([...consoleRoutes(), ...store.routes])
  const url = await server.listen()
  closing.push(() => server.close())
  browser ??= await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  const page = await browser.newPage()
  const failed: string[] = []
  page.on('pageerror', (err) => failed.push(err.message))
  // Each read the page asks, and how many have been answered.
  const asked: URL[] = []
  let answered = 0
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/v1/')) asked.push(new URL(r.url()))
  })
  page.on('requestfinished', (r) => {
    if (new URL(r.url()).pathname.startsWith('/v1/')) answered++
  })
  const settled = () => expect.poll(() => answered, { timeout: 20_000 }).toBe(asked.length)
  return { page, url, failed, asked, settled }
}

/** How many rows, and how many of them differ (each outcome and incident is a row of its own). */
const distinct = async (page: Page, rows: string) => {
  const texts = await page.locator(rows).allInnerTexts()
  return { rows: texts.length, distinct: new Set(texts).size }
}

// 120 incidents of their own agents (50 a page), and one with 120 held-back outcomes (20 in its detail).
const olderPages = () =>
  openConsole(
    [
      makeCorrelation(0, { incident: { id: incidentId } }),
      ...Array.from({ length: 120 }, (_, n) => {
        const c = makeCorrelation(n + 1, { incident: { id: `inc-${n}` } })
        return { ...c, agent: { ...c.agent, id: `agent-${n}` } }
      }),
    ],
    Array.from({ length: 120 }, (_, n) => outcome(n, 'suppressed', 'rate_limited_agent')),
  )

describe('the console, older pages', { timeout: 90_000 }, () => {
  it('asks for each older page once, however fast the button is clicked', async () => {
    const { page, url, failed, asked, settled } = await olderPages()
    await page.goto(`${url}/#/incident/${incidentId}`)
    await page.locator('#revokes tbody tr').first().waitFor()
    await page.locator('button[data-status="suppressed"]').dblclick()
    await page.locator('#revokes tbody tr').nth(69).waitFor()
    await settled()
    const cursors = asked.filter((u) => u.pathname === '/v1/revokes').map((u) => u.searchParams.get('cursor'))
    expect(new Set(cursors).size).toBe(cursors.length)
    expect(await distinct(page, '#revokes tbody tr')).toEqual({ rows: 70, distinct: 70 })

    // The incident list's "Older incidents".
    await page.goto(`${url}/#/`)
    await page.getByRole('button', { name: 'Older incidents' }).waitFor()
    await page.getByRole('button', { name: 'Older incidents' }).dblclick()
    await page.locator('main table tbody tr').nth(99).waitFor()
    await settled()
    const pages = asked.filter((u) => u.pathname === '/v1/incidents' && u.searchParams.has('cursor'))
    expect(pages).toHaveLength(1)
    expect(await distinct(page, 'main table tbody tr')).toEqual({ rows: 100, distinct: 100 })
    expect(failed).toEqual([])
  })

  it('asks nothing on a refresh while older pages are loaded', async () => {
    const { page, url, failed, asked, settled } = await olderPages()
    await page.clock.install({ time: new Date('2026-11-25T16:05:00Z') })
    await page.goto(`${url}/#/incident/${incidentId}`)
    await page.locator('#revokes tbody tr').first().waitFor()
    await page.locator('button[data-status="suppressed"]').click()
    await page.locator('#revokes tbody tr').nth(69).waitFor()
    await settled()
    const before = asked.length
    // One refresh tick: it runs to its end (the live line says the time) without a read.
    await page.clock.runFor(5_000)
    await page.getByText('updated 16:05:05 UTC').waitFor()
    await settled()
    expect(asked.slice(before).map((u) => u.pathname)).toEqual([])
    expect(failed).toEqual([])
  })
})

describe('the console, an incident flooded with held-back revokes', { timeout: 90_000 }, () => {
  it('shows the revoke that went ahead, the counts, and pages the held-back ones', async () => {
    const held = Array.from({ length: 120 }, (_, n) => outcome(n + 1, 'suppressed', 'rate_limited_agent'))
    const { page, url, failed } = await openConsole(
      [makeCorrelation(0, { incident: { id: incidentId } })],
      [outcome(0, 'sent', 'delivered'), ...held],
    )
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
