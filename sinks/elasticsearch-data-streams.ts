// The three data streams nerve writes, named by the data stream naming scheme `<type>-<dataset>-<namespace>`:
// logs-nerve.events-<ns>, logs-nerve.correlations-<ns>, logs-nerve.revokes-<ns>. Kibana Security's default
// `logs-*` patterns (and its External Alerts rule, for event.kind: alert) see them without changes.

/** What the indexer writes: one data stream per bus topic. */
export type IndexedTopic = 'events' | 'correlations' | 'revoke_outcomes'

export const indexedTopics: readonly IndexedTopic[] = ['events', 'correlations', 'revoke_outcomes']

const datasets: Record<IndexedTopic, string> = {
  events: 'nerve.events',
  correlations: 'nerve.correlations',
  revoke_outcomes: 'nerve.revokes',
}

export const datasetOf = (topic: IndexedTopic): string => datasets[topic]

export const dataStreamName = (topic: IndexedTopic, namespace: string): string =>
  `logs-${datasets[topic]}-${namespace}`

/** The data_stream.* fields (constant_keyword): they must match the stream's name. */
export const dataStreamFields = (topic: IndexedTopic, namespace: string) => ({
  type: 'logs',
  dataset: datasets[topic],
  namespace,
})
