// The data streams nerve writes, named by the data stream naming scheme `<type>-<dataset>-<namespace>`:
// logs-nerve.events-<ns>, logs-nerve.correlations-<ns>, logs-nerve.revokes-<ns>, and CloudTrail records in
// Elastic's AWS integration's own stream, logs-aws.cloudtrail-<ns>. Kibana Security's default `logs-*`
// patterns (and its External Alerts rule, for event.kind: alert) see them without changes.

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

/** Elastic's AWS integration's CloudTrail dataset: its prebuilt rules query `event.dataset: aws.cloudtrail`. */
export const cloudTrailDataset = 'aws.cloudtrail'

export const cloudTrailDataStreamFields = (namespace: string) => ({
  type: 'logs',
  dataset: cloudTrailDataset,
  namespace,
})

/** The stream a built document goes to: the one its data_stream fields name (they must match it). */
export const dataStreamOf = (doc: { data_stream?: unknown }): string => {
  const ds = doc.data_stream as { type: string; dataset: string; namespace: string }
  return `${ds.type}-${ds.dataset}-${ds.namespace}`
}
