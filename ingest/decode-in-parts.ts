// A request body → decoded events without holding the event loop: a body under `partChars` is split and
// decoded in one go (a single alert, a small batch: no cost added); a larger one (NDJSON, one array, one
// CloudTrail log file) is parsed, validated, normalized and identified a part at a time, giving the loop
// back between parts (runtime/next-turn.ts: one part per turn, however many bodies are decoded at once), so
// that /healthz and the other requests are answered while three 4 MB bodies are decoded. The result is the
// one decode() gives:
// links are learned from every part before any event is resolved (an issuing record later in the body
// still names the workload of an earlier one), and the record limit counts the whole body.
import { NerveError } from '../runtime/errors.ts'
import { nextTurn } from '../runtime/next-turn.ts'
import type { DecodeContext, Decoded, EventDecoder, ItemKind } from './decode-events.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { type JsonItem, type SplitLimits, splitJsonItems, splitJsonItemsInParts } from './split-json-items.ts'

/**
 * About 1–2 ms of decoding per part on a small machine (Falco alerts are about 1 KiB each). Parts of 256 KiB
 * and 250 items were 20–30 ms tasks under load (CPU profile of the healthz bench); 128 KiB and 125 items
 * still 8–18 ms, a young-generation collection falling in one making it 20–30 ms.
 */
export const partChars = 64 * 1024
/** Records normalized (or resolved) between two turns. */
export const partItems = 64

export async function decodeInParts(
  decoder: EventDecoder,
  kind: ItemKind,
  text: string,
  limits: SplitLimits,
  ctx: DecodeContext,
  pause: () => Promise<void> = nextTurn,
): Promise<Decoded> {
  // Each item's text is kept only when the events' raw texts are (DecodeContext.rawTexts).
  const split = ctx.rawTexts ? { ...limits, texts: true } : limits
  if (text.length <= partChars) return decoder.decode(kind, splitJsonItems(text, split), ctx)
  return decodeItemsInParts(decoder, kind, splitJsonItemsInParts(text, split, partChars), ctx, pause)
}

/**
 * The items of a large body, given a part at a time (an empty part is only a place to give the loop back),
 * normalized partItems at a time and resolved partItems at a time, with `pause` awaited between any two
 * steps: what decoder.decode() gives for all the items at once. The Firehose route gives its records' items
 * so, in parts of about partChars characters of record data.
 */
export async function decodeItemsInParts(
  decoder: EventDecoder,
  kind: ItemKind,
  parts: Iterable<readonly JsonItem[]>,
  ctx: DecodeContext,
  pause: () => Promise<void> = nextTurn,
): Promise<Decoded> {
  const drafts: UnresolvedEvent[] = []
  const rawTexts: (string | undefined)[] | undefined = ctx.rawTexts ? [] : undefined
  const invalid: Decoded['invalid'] = []
  const skipped: Decoded['skipped'] = {}
  const partCtx = { ...ctx, maxRecords: undefined }
  let links = 0
  for (const items of parts) {
    if (items.length === 0) await pause()
    for (let i = 0; i < items.length; i += partItems) {
      await pause()
      // A log file's thousands of records are one item: they are normalized partItems at a time too.
      const steps = decoder.normalizeInSteps(kind, items.slice(i, i + partItems), partCtx, partItems)
      let step = steps.next()
      while (!step.done) {
        await pause()
        step = steps.next()
      }
      const part = step.value
      for (const d of part.drafts) drafts.push(d)
      if (rawTexts) for (const t of part.rawTexts ?? part.drafts.map(() => undefined)) rawTexts.push(t)
      for (const x of part.invalid) invalid.push(x)
      links += part.links ?? 0
      for (const [reason, n] of Object.entries(part.skipped) as [keyof Decoded['skipped'], number][]) {
        skipped[reason] = (skipped[reason] ?? 0) + n
      }
      const records = drafts.length + invalid.length
      if (ctx.maxRecords !== undefined && records > ctx.maxRecords) {
        throw new NerveError(
          'PAYLOAD_TOO_LARGE',
          `The body holds more than ${ctx.maxRecords} records; at most ${ctx.maxRecords} are accepted per request.`,
        )
      }
    }
  }
  const events: Decoded['events'] = []
  let internal = 0
  for (let i = 0; i < drafts.length; i += partItems) {
    await pause()
    const part = decoder.resolve(drafts.slice(i, i + partItems))
    for (const e of part.events) events.push(e)
    internal += part.internal
  }
  const decoded: Decoded = { events, invalid, skipped, internal }
  if (rawTexts) decoded.rawTexts = rawTexts
  if (links > 0) decoded.links = links
  return decoded
}
