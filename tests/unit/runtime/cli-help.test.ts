// `nerve --help` and each command's help as an operator reads them: every line fits a terminal of 110
// columns, and what they say is exact. Before: the run help's environment lines reached 126 characters,
// --memory-budget offered a K unit though its least size is 1M, and the revoke secret's "(refused without
// it)" read as if a URL without a secret were refused, where a secret without its URL is.
import { describe, expect, it } from 'vitest'
import { parseByteSize } from '../../../ingest/parse-byte-size.ts'
import { commandHelp, stageHelp, usageText } from '../../../runtime/cli-help.ts'

const texts: [string, string][] = [
  ['nerve --help', usageText(Object.entries(commandHelp).map(([name, c]) => [name, c.summary]))],
  ...Object.entries(commandHelp).map(([name, c]): [string, string] => [`nerve ${name} --help`, c.help]),
  ['nerve correlate --help', stageHelp('correlate', 'correlate')],
]

describe('the help texts', () => {
  it.each(texts)('%s: no line is wider than 110 columns', (_, text) => {
    const wide = text.split('\n').filter((line) => line.length > 110)
    expect(wide).toEqual([])
  })

  it('gives --memory-budget the sizes it takes: at least 1M, never a K', () => {
    const help = commandHelp.replay.help
    const option = help
      .slice(help.indexOf('--memory-budget SIZE\n'), help.indexOf('--spill-dir'))
      .replace(/\s+/g, ' ')
    expect(option).toContain('at least 1M')
    expect(option).not.toMatch(/\bK\b/)
    expect(() => parseByteSize('512K', '--memory-budget')).toThrow(/at least 1M/)
  })

  it('says which revoke webhook variable is refused without the other', () => {
    const line = commandHelp.run.help
      .split('\n')
      .findIndex((l) => l.startsWith('  NERVE_REVOKE_WEBHOOK_SECRET'))
    const text = commandHelp.run.help
      .split('\n')
      .slice(line, line + 2)
      .join(' ')
      .replace(/\s+/g, ' ')
    expect(text).toContain('refused when that variable is not set')
    expect(text).not.toContain('refused without it')
  })
})
