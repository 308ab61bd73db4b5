// Work cut into parts resumes one waiter per turn of the event loop, in order, so the loop polls for I/O
// between any two parts.
import { describe, expect, it } from 'vitest'
import { nextTurn } from '../../../runtime/next-turn.ts'

/** Counts turns of the event loop: each count is queued from the check phase, so it runs one turn later. */
function turnCounter() {
  let turn = 0
  let running = true
  const tick = () => {
    turn++
    if (running) setImmediate(tick)
  }
  setImmediate(tick)
  return {
    now: () => turn,
    stop: () => {
      running = false
    },
  }
}

describe('nextTurn', () => {
  it('resumes a waiter that asks to go first on the next turn, ahead of those already waiting', async () => {
    const resumed: string[] = []
    const waits = ['a', 'b', 'c'].map((name) => nextTurn().then(() => resumed.push(name)))
    waits.push(nextTurn(true).then(() => resumed.push('first')))
    await Promise.all(waits)
    expect(resumed).toEqual(['first', 'a', 'b', 'c'])
  })

  it('resumes waiters that asked together on turns of their own, in the order they asked', async () => {
    const turns = turnCounter()
    const resumed: [string, number][] = []
    await Promise.all(['a', 'b', 'c'].map((name) => nextTurn().then(() => resumed.push([name, turns.now()]))))
    turns.stop()
    expect(resumed.map(([name]) => name)).toEqual(['a', 'b', 'c'])
    const at = resumed.map(([, turn]) => turn)
    expect(new Set(at).size).toBe(3)
  })

  it('lets I/O be handled between two waiters', async () => {
    const { createServer, request } = await import('node:http')
    const server = createServer((_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const events: string[] = []
    // Many parts of a long job, each holding the loop for 2 ms, while one small request is answered.
    const job = (async () => {
      for (let part = 0; part < 200; part++) {
        await nextTurn()
        const end = performance.now() + 2
        while (performance.now() < end) {}
        events.push('part')
      }
    })()
    const answered = new Promise<void>((resolve) => {
      request(`http://127.0.0.1:${port}/`, (res) => {
        res.resume()
        res.once('end', () => {
          events.push('answer')
          resolve()
        })
      }).end()
    })
    await Promise.all([job, answered])
    server.close()
    expect(events.indexOf('answer')).toBeLessThan(events.length - 1)
  })
})
