// Retention of the embedded store (sinks.store.retention): whole incidents deleted once their last
// correlation is older than the cutoff, with their correlations, revoke outcomes and aliases.
import type { Metrics } from '../runtime/metrics.ts'
import type { SqliteFile } from '../runtime/sqlite-file.ts'
import { type IncidentBounds, incidentCorrelationsSql } from './store-filters.ts'

export type RetentionDeleted = { incidents: number; correlations: number; revoke_outcomes: number }

/** `forgetAll`: the writer's in-memory incidents, emptied before a deletion (incident-tallies.ts). */
export function createStoreRetention(db: SqliteFile['db'], metrics: Metrics, forgetAll: () => void) {
  const retentionDeleted = metrics.counter(
    'nerve_store_retention_deleted_rows_total',
    'Rows the embedded store deleted by retention (sinks.store.retention).',
    ['table'],
  )
  const sql = {
    expiredIncidents: db.prepare<[number, number], IncidentBounds>(
      'SELECT id, agent_id, first_seen, last_seen FROM incidents WHERE last_seen < ? LIMIT ?',
    ),
    deleteIncident: db.prepare('DELETE FROM incidents WHERE id = ?'),
    deleteIncidentCorrelations: db.prepare<[IncidentBounds]>(
      `DELETE FROM correlations WHERE ${incidentCorrelationsSql}`,
    ),
    deleteIncidentOutcomes: db.prepare('DELETE FROM revoke_outcomes WHERE incident_id = ?'),
    deleteOrphanAliases: db.prepare(
      'DELETE FROM incident_aliases WHERE into_id NOT IN (SELECT id FROM incidents)',
    ),
    deleteOrphanOutcomes: db.prepare(
      'DELETE FROM revoke_outcomes WHERE time < ? AND incident_id NOT IN (SELECT id FROM incidents)',
    ),
  }

  /** One transaction per 500 incidents, so that retention never holds the store's writers up for long. */
  const deleteIncidents = db.transaction((cutoff: number) => {
    const deleted = { incidents: 0, correlations: 0, revoke_outcomes: 0 }
    for (const incident of sql.expiredIncidents.all(cutoff, 500)) {
      deleted.correlations += sql.deleteIncidentCorrelations.run(incident).changes
      deleted.revoke_outcomes += sql.deleteIncidentOutcomes.run(incident.id).changes
      deleted.incidents += sql.deleteIncident.run(incident.id).changes
    }
    return deleted
  })
  const deleteBefore = (cutoff: number): RetentionDeleted => {
    forgetAll()
    const total: RetentionDeleted = { incidents: 0, correlations: 0, revoke_outcomes: 0 }
    for (;;) {
      const deleted = deleteIncidents(cutoff)
      total.incidents += deleted.incidents
      total.correlations += deleted.correlations
      total.revoke_outcomes += deleted.revoke_outcomes
      if (deleted.incidents < 500) break
    }
    total.revoke_outcomes += sql.deleteOrphanOutcomes.run(cutoff).changes
    sql.deleteOrphanAliases.run()
    for (const [table, count] of Object.entries(total)) if (count > 0) retentionDeleted.inc({ table }, count)
    return total
  }
  return deleteBefore
}
