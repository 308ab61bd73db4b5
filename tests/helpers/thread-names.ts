// The OS names of this process's threads (Linux: /proc/self/task/*/comm), for the tests of the stage
// threads' names (runtime/thread-name.ts); undefined where /proc is not there.
import { existsSync, readdirSync, readFileSync } from 'node:fs'

export function threadNames(): string[] | undefined {
  if (!existsSync('/proc/self/task')) return undefined
  const names: string[] = []
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      names.push(readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim())
    } catch {
      // the thread ended meanwhile
    }
  }
  return names
}

/** How many of this process's threads carry `name`. */
export const threadsNamed = (name: string): number => threadNames()?.filter((n) => n === name).length ?? 0
