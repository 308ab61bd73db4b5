// Log lines carry text the watched agent chose: an agent id that falls back to its role ARN or workload
// name, agents named in a flood warning, an error quoting its input. JSON escapes only C0 controls; a C1
// CSI (U+009B) or a right-to-left override (U+202E) reached the operator's terminal through `kubectl logs`
// or `jq -r`. Written through a real pino destination (a file), each such character is a `\u` escape and
// the line parses to the same value.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { NerveError } from '../../../runtime/errors.ts'
import { createLogger, logDestination } from '../../../runtime/logger.ts'
import { tempDir } from '../../helpers/random-names.ts'

/** The characters a terminal acts on or that reorder or hide text, none of which JSON escapes. */
const hostile = '\u009b31m\u0085\u007f\u202egpj.exe\u2066\u200b\u200f\u061c\u2028\ufeff'

function linesOf(write: (log: ReturnType<typeof createLogger>) => void): string[] {
  const file = join(tempDir('nerve-logger'), 'nerve.log')
  const destination = pino.destination({ dest: file, sync: true })
  const log = createLogger({ level: 'debug' }, destination as unknown as NodeJS.WritableStream)
  write(log)
  destination.flushSync()
  return readFileSync(file, 'utf8').trim().split('\n')
}

describe('operator log lines', () => {
  it('escapes C1 controls, DEL, bidirectional and invisible characters in every field, the message and errors', () => {
    const agent = `arn:aws:iam::123456789012:role/data-cleaner${hostile}`
    const lines = linesOf((log) => {
      const child = log.child({ component: 'correlation_store' })
      child.info(
        { incident_id: 'inc-1', agent_id: agent, rule: 'outbound-then-iam-write' },
        'Incident opened.',
      )
      child.warn({ agents: [agent, 'data-cleaner'], count: 2 }, `Agents went over their cap: ${agent}.`)
      child.error({ err: new NerveError('INPUT_INVALID', `Not JSON: ${agent}`) }, 'Rejected.')
      log.child({ agent: agent }).info('Bound.')
    })
    expect(lines).toHaveLength(4)
    for (const line of lines) {
      expect(line).not.toMatch(/[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/)
      expect(line).toContain(
        '\\u009b31m\\u0085\\u007f\\u202egpj.exe\\u2066\\u200b\\u200f\\u061c\\u2028\\ufeff',
      )
    }
    const [opened, flood, error, bound] = lines.map((line) => JSON.parse(line))
    expect(opened).toMatchObject({ level: 'info', agent_id: agent, msg: 'Incident opened.' })
    expect(flood).toMatchObject({
      agents: [agent, 'data-cleaner'],
      msg: `Agents went over their cap: ${agent}.`,
    })
    expect(error.err.message).toBe(`Not JSON: ${agent}`)
    expect(bound.agent).toBe(agent)
  })

  it('writes ordinary text as it is', () => {
    const [line] = linesOf((log) =>
      log.info({ host: 'ip-10-0-1-23.ec2.internal', note: 'é–ü "q" \\' }, 'Started.'),
    )
    expect(line).toContain('"host":"ip-10-0-1-23.ec2.internal","note":"é–ü \\"q\\" \\\\","msg":"Started."')
  })

  it("hands a worker thread's lines to the logger's own destination, a child's included", () => {
    const file = join(tempDir('nerve-logger'), 'nerve.log')
    const destination = pino.destination({ dest: file, sync: true })
    const log = createLogger({ level: 'info' }, destination as unknown as NodeJS.WritableStream)
    logDestination(log.child({ component: 'correlator' })).write('{"msg":"From the worker."}\n')
    destination.flushSync()
    expect(readFileSync(file, 'utf8')).toBe('{"msg":"From the worker."}\n')
  })
})
