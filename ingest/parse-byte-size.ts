// A size given on the command line: a number of bytes with an optional K, M or G (binary: 64M is
// 64 MiB). Absent, the default memory budget of `nerve replay`.
import { NerveError } from '../runtime/errors.ts'

export const defaultReplayBudgetBytes = 16 * 1024 * 1024

const units: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

export function parseByteSize(text: string | undefined, option: string): number {
  if (text === undefined) return defaultReplayBudgetBytes
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim())
  const bytes = match ? Number(match[1]) * (units[(match[2] as string).toLowerCase()] as number) : Number.NaN
  if (!Number.isFinite(bytes) || bytes < 1024 * 1024) {
    throw new NerveError(
      'INPUT_INVALID',
      `${option} takes a size of at least 1M, such as 64M or 1G, not "${text}".`,
    )
  }
  return Math.floor(bytes)
}
