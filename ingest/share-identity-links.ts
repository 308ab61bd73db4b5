// Every ingest instance must resolve identities the same way: a credential link one instance learns is
// published on identityLinksTopic (keyed by access key id), and every instance reads all of them through a
// consumer group of its own. The links file in the data dir still keeps them across a restart.
import type { Bus, Subscription } from '../bus/bus.ts'
import { identityLinksTopic } from '../bus/topics.ts'
import { errorCodeOf } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { IdentityLink } from '../schemas/types.ts'

export type IdentityLinkSharing = {
  /** Queues a link learned here; published in the next turn of the event loop. */
  share(link: IdentityLink): void
  close(): Promise<void>
}

export async function startIdentityLinkSharing(deps: {
  bus: Bus
  log: Logger
  /** Unique per instance, stable across its restarts (e.g. the host name). */
  group: string
  /** May resolve later: the links group commits the batch once it has. */
  onLinks(links: IdentityLink[]): void | Promise<void>
}): Promise<IdentityLinkSharing> {
  let pending: IdentityLink[] = []
  let flushing: Promise<void> | undefined

  const flush = async () => {
    const links = pending
    pending = []
    try {
      await deps.bus.publish(
        identityLinksTopic,
        links.map((link) => ({ key: link.access_key_id, value: link })),
      )
    } catch (err) {
      // Other instances learn it when they see the issuing event themselves; this one keeps it on disk.
      deps.log.warn(
        { error_code: errorCodeOf(err), count: links.length },
        'Could not share learned identity links with other ingest instances.',
      )
    }
  }

  const subscription: Subscription = await deps.bus.subscribe(
    identityLinksTopic,
    deps.group,
    async (batch) => {
      await deps.onLinks(batch.map((record) => record.value))
    },
  )

  return {
    share: (link) => {
      pending.push(link)
      flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flush).finally(() => {
        flushing = undefined
      })
    },
    close: async () => {
      await flushing
      await subscription.stop()
    },
  }
}
