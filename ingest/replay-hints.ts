// What to try when a replay finds little: one line each on stderr, after the summary, for the two ways a
// backtest most often comes out empty. Pure: the summary's counts in, the lines out.

export type ReplayOutcome = {
  order: 'time' | 'input'
  /** Events handed to the correlator (duplicates and stand-ins included). */
  read: number
  late: number
  correlations: number
  /** Agents named in the config's registry. */
  registered: number
}

/** Late events past this share of what was read get a hint. */
const mostlyLate = 0.5

export function replayHints(o: ReplayOutcome): string[] {
  const hints: string[] = []
  if (o.read > 0 && o.late > o.read * mostlyLate) {
    hints.push(
      o.order === 'input'
        ? `hint: ${o.late} of ${o.read} events were late: with --order input they arrive in file order, so a file of alerts read after the CloudTrail files comes after its window closed. Use --order time to backtest, or raise correlation.window.grace.`
        : `hint: ${o.late} of ${o.read} events were late even in event-time order: events of the same time span are spread over far-apart timestamps. Raise correlation.window.grace to cover the spread.`,
    )
  }
  if (o.read > 0 && o.correlations === 0 && o.registered === 0) {
    hints.push(
      'hint: no correlation, and no agent registry: a Falco alert and a CloudTrail call join only when they name the same agent, and without `agents:` in a --config file nerve can link them only through credentials it sees issued (IRSA, EKS Pod Identity). Name the pod and its role as one agent: see docs/correlation.md.',
    )
  }
  return hints
}
