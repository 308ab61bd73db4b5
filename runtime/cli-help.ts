// What `nerve --help` and `nerve <command> --help` print: one summary line and one help text per command.
// Kept apart from nerve.ts, which wires the commands to the stages, so the text reads as one page.

import { envVariables } from './config-env.ts'
import { NerveError } from './errors.ts'

const configHelp = `  -c, --config FILE   YAML config (default: NERVE_CONFIG, else built-in defaults)`

/** Help lines are at most this wide: a terminal of 110 columns shows each on one line. */
const helpWidth = 110

/** The variables, each description wrapped at helpWidth under its own column. */
const environmentHelp = envVariables
  .map((v) => `  ${v.name.padEnd(35)}${wrap(v.description.replaceAll('`', ''), helpWidth - 37, 37)}`)
  .join('\n')

/** `text` in lines of at most `width` characters, each after the first indented by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line === '' ? word : `${line} ${word}`
  }
  lines.push(line)
  return lines.join(`\n${' '.repeat(indent)}`)
}

export type CommandHelp = { summary: string; help: string }

export const commandHelp = {
  run: {
    summary: 'every stage in one process: receivers, correlator, store, Elasticsearch, revoke webhooks',
    help: `Usage: nerve run [--config FILE]

Runs ingest, correlate and the sinks in one process. The bus is embedded (SQLite under the data dir)
unless NERVE_KAFKA_BROKERS is set; the Elasticsearch sink is on when NERVE_ELASTICSEARCH_URL is set;
revoke webhooks go to revoke.webhooks (or NERVE_REVOKE_WEBHOOK_URL). Correlations are always kept in
the embedded store and served on GET /v1/correlations.

Options:
${configHelp}

Environment (each overrides its config key; docs/configuration.md):
${environmentHelp}

Send it events:
  curl -H "Authorization: Bearer $TOKEN" --data-binary @alert.json http://127.0.0.1:8080/v1/falco
  curl -H "Authorization: Bearer $TOKEN" --data-binary @trail.json http://127.0.0.1:8080/v1/cloudtrail
  curl http://127.0.0.1:8080/v1/correlations

Stops on SIGINT/SIGTERM after draining requests and batches in flight.
`,
  },
  replay: {
    summary: 'offline and deterministic: files in, one correlation per line out',
    help: `Usage: nerve replay [--order time|input] [--memory-budget SIZE] [--since TIME] [--until TIME]
                   [--strict] [--out FILE] [--config FILE] PATH|s3://BUCKET/PREFIX...

Reads Falco alerts and CloudTrail records in any supported form (JSON, JSON array, NDJSON, .gz,
{"Records":[...]} log files, EventBridge events; Falco and CloudTrail mixed), runs the same
normalization, identity resolution and correlator as 'nerve run', and writes one correlation per line
(NDJSON) to stdout or --out. A one-line JSON summary goes to stderr: read, invalid, skipped, duplicate,
duplicate_conflicts (copies of an id that differ from the first, kept one), late, correlations, overflow
(events shed by the caps), ignored (by reason), confirmations (denied calls confirming a revoke),
revokes (what the revoke policy would send), suppressed (what it would not, by reason; rate limits over
event time), future (items dated past max_future_skew), files_rejected, spilled_runs, elapsed_ms,
peak_rss_mib. A file whose bytes are unusable (a .gz truncated, or with bytes after its gzip data) is
rejected whole, named on stderr, and the others are replayed: the exit code is then 3 (1 when nothing
could be replayed). A PATH is a file, a directory (walked for *.json, *.ndjson, *.jsonl and *.gz files,
CloudTrail-Digest/ left out) or a quoted glob (* and ? within a path segment, ** across segments). An
s3://bucket/prefix is listed and read through the AWS SDK (its credential chain, AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL, AWS_REGION). On a terminal a progress line shows files, events, events/s, the event
time reached and an ETA. The same input gives the same output bytes. More in docs/replay.md.

Options:
      --order time    all items sorted by event time, then event id (default: backtests); files are
                      merged under the memory budget, spilling sorted runs to a temp dir
      --order input   files in argument order, items in file order (reproduces a live arrival sequence)
      --memory-budget SIZE
                      events held in memory before a sorted run is spilled (default 16M, at least
                      1M: 64M, 1G); the output bytes do not depend on it
      --spill-dir DIR where the spilled runs go (default: the OS temp dir; removed at the end)
      --since TIME, --until TIME
                      read only the CloudTrail files whose name's time is in [since, until) (ISO 8601,
                      UTC: 2026-11-01 or 2026-11-01T06:00Z); files without one are read
      --threads N     decoding threads for --order time, beside the main thread that merges (default
                      0: the main thread decodes); 1: the main thread decodes beside one thread (two
                      lanes, one more heap); 2 or more: only they decode; the output bytes do not
                      depend on it; refused with --order input
      --strict        stop at the first file whose bytes are unusable, with exit code 1 and no output
  -o, --out FILE      write correlations to FILE instead of stdout
${configHelp}

Example:
  nerve replay --order time falco-alerts.ndjson 123456789012_CloudTrail_us-east-1_*.json.gz > pairs.ndjson
  nerve replay --memory-budget 128M falco/ 'trail/AWSLogs/**/2026/11/*/*.json.gz' -o pairs.ndjson
  nerve replay --since 2026-11-01 --until 2026-12-01 \\
    s3://org-trail/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/ falco/ -o november.ndjson
`,
  },
  setup: {
    summary: 'install Elasticsearch templates and ILM, or Kibana dashboards (setup elasticsearch|kibana)',
    help: `Usage: nerve setup elasticsearch|kibana [--config FILE]

  elasticsearch   installs the ILM policy, component and index templates for nerve's data streams
                  (NERVE_ELASTICSEARCH_URL or sinks.elasticsearch.url). Safe to run twice.
  kibana          imports the data views and the "Edge to core" dashboard shipped in dashboards/
                  (NERVE_KIBANA_URL or sinks.kibana.url). Safe to run twice.

Options:
${configHelp}
`,
  },
  config: {
    summary: 'validate the configuration as `run` does and print it as YAML, or the reference of every key',
    help: `Usage: nerve config [--config FILE] [--json | --reference]

Validates the configuration exactly as 'nerve run' would (file, then NERVE_* overrides, then the
correlation rules), and prints it with defaults applied as YAML that --config accepts again: durations
as 90s / 20m / 1h, secrets masked as "***" (put them back, or set them with NERVE_* variables).
Exits 1 naming every problem, with "did you mean" for a mistyped key (or the NERVE_* variable that set
it): a webhook secret, a TLS file that cannot be read, a rule, as 'nerve run' would before it opens
anything.

Options:
${configHelp}
      --json          print JSON instead, durations in milliseconds
      --reference     print the Markdown reference of every key instead (generated from the schema)
`,
  },
  rules: {
    summary: 'print the built-in correlation rule pack as YAML, or the rules a config enables',
    help: `Usage: nerve rules [--config FILE]

Prints the built-in rule pack as a config file fragment (correlation.rules), or with a config (--config
or NERVE_CONFIG) the rules it enables: its correlation.rules (else the pack), then its
correlation.extra_rules. To add rules to the pack, list them under correlation.extra_rules; to replace
it, edit this output and keep it as correlation.rules.

Options:
${configHelp}
`,
  },
  'dead-letters': {
    summary: 'print what was set aside: dead letters (rejected input), or late events with --late',
    help: `Usage: nerve dead-letters [--late] [--since TIME] [--until TIME] [--limit N] [--config FILE]

Prints, newest first, one JSON line each, the dead letters the sinks kept under the data dir (input
rejected with its reason and original bytes, items Elasticsearch refused), or with --late the events
that missed their window. A last line on stderr says how many of how many were shown. The same lists
are served by GET /v1/dead-letters and GET /v1/late-events. The data dir is only read, while nerve runs
or not: one with no nerve data (a mistyped NERVE_DATA_DIR) is said as such, exit 1.

Options:
      --late          late events instead of dead letters
      --since TIME    ISO 8601 or epoch ms
      --until TIME    ISO 8601 or epoch ms
  -n, --limit N       at most N lines (default 100, at most 1000)
${configHelp}
`,
  },
} satisfies Record<string, CommandHelp>

/** What `nerve rules` says above the rules: the built-in pack, or the rules a config file enables. */
export const rulesHeader = (version: string, file: string | undefined, count: number) =>
  file === undefined
    ? `nerve ${version}: the built-in rule pack (${count} rules). Kept as correlation.rules it replaces the pack;
correlation.extra_rules adds to it instead.`
    : `nerve ${version}: the ${count} rules ${file} enables (correlation.rules or the built-in pack, then
correlation.extra_rules).`

/**
 * Runs a parser of query-style parameters (the read API's) for a command's options: its problems come
 * back named as the options (\`limit: must be…\` → \`--limit: must be…\`).
 */
export function optionProblems<T>(parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    const problems = (err as { details?: { path: string; message: string }[] }).details
    if (!Array.isArray(problems)) throw err
    throw new NerveError('INPUT_INVALID', `${problems.map((p) => `--${p.path}: ${p.message}`).join('; ')}.`)
  }
}

/** The help of `nerve ingest|correlate|sink`: one stage of a Kafka deployment. */
export const stageHelp = (name: string, stage: string) => `Usage: nerve ${name} [--config FILE]

Runs only the ${stage} stage, for Kafka deployments where each stage is its own service, scaled by
running more copies (consumer groups share the partitions). Needs NERVE_KAFKA_BROKERS (or
kafka.brokers); on one machine use 'nerve run'.

Options:
${configHelp}
`

/** What `nerve --help` prints: the commands, each with its summary line. */
export const usageText = (
  summaries: readonly [string, string][],
) => `nerve: joins Falco runtime alerts (edge) to CloudTrail IAM actions (core) by agent identity and
time window, in real time.

Usage: nerve <command> [options]

Commands:
${summaries.map(([name, summary]) => `  ${name.padEnd(14)}${summary}`).join('\n')}

Run 'nerve <command> --help' for a command's options; 'nerve --version' for the version. Start here:
'nerve run', then point Falcosidekick (webhook output) and CloudTrail (EventBridge, Firehose, files) at it.

Exit codes: 0 done; 1 a failure, said in one line ('nerve <command>: ...'); 2 a usage error (an unknown
command or option, a missing or wrong argument), said with the command's usage.
`
