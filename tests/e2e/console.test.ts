// The console in a real headless Chromium (Debian's chromium, driven by playwright-core): `nerve run` on the
// README's "Try it" fixture, the incident opened from the list, and on the page the agent, both rules, the
// Falco rule and the CloudTrail action; the screenshot is decoded and looked at. A Falco output written by
// the watched agent with HTML in it is shown as text, never run, and its bidirectional controls as escapes.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { type NerveProcess, startNerve } from '../helpers/nerve-process.ts'
import { countColour, decodePng } from '../helpers/png-pixels.ts'
import { tempDir } from '../helpers/random-names.ts'
import { waitFor } from '../helpers/wait-for.ts'

const replay = resolve(import.meta.dirname, '../fixtures/replay')
const chromiumPath = process.env.NERVE_CHROMIUM ?? '/usr/bin/chromium'
const token = 'nrv_console-test-0123456789abcdef'
const hostile = '<img src=x onerror="document.title=\'owned\'">'
// A right-to-left override: written as it is, `cat /tmp/<U+202E>txt.hs` reads "cat /tmp/hs.txt" on screen, and
// everything after it on the line is reversed too. The console shows the control as `\u202e` instead.
const spoof = 'cat /tmp/\u202etxt.hs'

let nerve: NerveProcess | undefined
let browser: Browser | undefined
afterAll(async () => {
  await browser?.close()
  await nerve?.stop()
})

async function post(path: string, body: Buffer | string) {
  const res = await fetch(`${nerve?.url}${path}`, {
    method: 'POST',
    body,
    headers: { authorization: `Bearer ${token}` },
  })
  expect(res.status).toBe(202)
}

describe('the console', { timeout: 90_000 }, () => {
  it('shows the Try-it incident with its agent, rules, Falco alert and CloudTrail action', async () => {
    expect(existsSync(chromiumPath), `Chromium at ${chromiumPath} (.ci/run installs it)`).toBe(true)
    const dir = tempDir('nerve-console')
    nerve = await startNerve(['run', '--config', join(replay, 'nerve.yaml')], {
      NERVE_DATA_DIR: dir,
      NERVE_INGEST_TOKEN: token,
    })
    const alerts = readFileSync(join(replay, 'falco-alerts.ndjson'), 'utf8')
    // The shell alert again, 1 ms later, with HTML in the output the agent controls.
    const shell = JSON.parse(alerts.split('\n')[0] as string)
    const forged = {
      ...shell,
      output: `${shell.output} ${hostile} ${spoof}`,
      time: '2021-04-10T19:27:21.003873265Z',
    }
    await post('/v1/falco', `${alerts}${JSON.stringify(forged)}\n`)
    await post(
      '/v1/cloudtrail',
      readFileSync(join(replay, '123456789012_CloudTrail_us-west-2_20210410T1930Z_tester.json.gz')),
    )
    // Done when the incident holds the AttachRolePolicy pairs and its count stopped moving (the rule pack
    // decides how many pairs there are; the README's data gives more than one rule).
    let seen = -1
    const incidents = await waitFor(
      async () => {
        const body = (await (await fetch(`${nerve?.url}/v1/incidents`)).json()) as {
          items: { id: string; rules: string[]; actions: string[]; correlations: number }[]
        }
        const first = body.items[0]
        const settled = first?.actions.includes('iam:AttachRolePolicy') && first.correlations === seen
        seen = first?.correlations ?? -1
        return settled ? body.items : undefined
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'the incident with all its correlations' },
    )
    const incident = incidents[0] as (typeof incidents)[number]
    expect(incident.rules.length).toBeGreaterThanOrEqual(2)

    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const failed: string[] = []
    page.on('pageerror', (err) => failed.push(err.message))
    page.on('requestfailed', (req) => failed.push(req.url()))
    const details: string[] = []
    page.on('request', (req) => {
      if (req.url().includes('/v1/incidents/')) details.push(req.url())
    })
    await page.goto(`${nerve.url}/`)
    const row = page.locator(`tr[data-incident="${incident.id}"]`)
    await row.waitFor()
    expect(await row.textContent()).toContain('alpine-debugger')
    const shots = process.env.NERVE_SCREENSHOT_DIR ?? dir
    writeFileSync(join(shots, 'console-list.png'), await page.screenshot())
    await row.click()
    await page.locator('#timeline li.core').first().waitFor()

    const text = (await page.locator('main').textContent()) ?? ''
    expect(text).toContain('alpine-debugger')
    for (const rule of incident.rules) expect(text).toContain(rule)
    expect(text).toContain('Terminal shell in container')
    expect(text).toContain('iam:AttachRolePolicy')
    expect(text).toContain(hostile)
    expect(text).toContain('cat /tmp/\\u202etxt.hs')
    expect(text).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/)
    expect(await page.title()).toBe('nerve console')
    expect(await page.locator('main img').count()).toBe(0)
    // The detail is asked for with the newest 100 correlations, never all of a flood's 1,000.
    expect(details.length).toBeGreaterThan(0)
    for (const url of details) expect(url).toContain('?correlations=100')
    expect(failed).toEqual([])

    const png = await page.screenshot()
    writeFileSync(join(shots, 'console-incident.png'), png)
    const pixels = decodePng(png)
    expect([pixels.width, pixels.height]).toEqual([1280, 900])
    expect(countColour(pixels, '#12161c')).toBeGreaterThan(1280 * 30) // the header bar
    expect(countColour(pixels, '#7a3fd1')).toBeGreaterThan(40) // edge events on the timeline
    expect(countColour(pixels, '#0b6bcb')).toBeGreaterThan(40) // core events and links

    await page.goto(`${nerve.url}/#/agent/alpine-debugger`)
    await page.locator('dl.ids').first().waitFor()
    const agent = (await page.locator('main').textContent()) ?? ''
    expect(agent).toContain('arn:aws:iam::123456789012:role/tester')
    // Ingest's own summary of the agent (GET /v1/agents?agent=), with when it was last seen.
    expect(agent).toContain('Seen by ingest since it started')
    expect(agent).toContain('last_seen_iso')
    expect(agent).toMatch(/Recent incidents \([1-9]\d*\)/)

    // The filter form: a score above the incident's finds nothing; its Falco rule finds it.
    await page.goto(`${nerve.url}/#/`)
    await page.locator('input[name=min_score]').fill('95')
    await page.locator('form.filters button').click()
    await page.getByText('No incident matches.').waitFor()
    await page.goto(`${nerve.url}/#/?rule=Terminal%20shell%20in%20container&since=2021-04-10T19:00:00Z`)
    await page.locator(`tr[data-incident="${incident.id}"]`).waitFor()

    // Trusted Types: the page cannot write a string as HTML, whatever a later change to its script does.
    const written = await page.evaluate(`(() => {
      try {
        document.body.insertAdjacentHTML('beforeend', '<b id="tt">x</b>')
        return 'written'
      } catch (err) {
        return err.name
      }
    })()`)
    expect(written).toBe('TypeError')
    // A link with a broken escape (`%E0%A4%A`) says what is wrong instead of staying on "Loading…".
    await page.goto(`${nerve.url}/#/agent/%E0%A4%A`)
    await page.locator('main p.error').waitFor({ timeout: 5_000 })
    expect(failed).toEqual([])
  })
})
