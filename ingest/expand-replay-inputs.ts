// `nerve replay`'s arguments → the files to read. A file is read whatever its name; a directory is
// walked (subdirectories too) for the files that hold events: *.json, *.ndjson, *.jsonl, each optionally
// .gz, and any other *.gz, leaving out hidden entries and CloudTrail digest folders (CloudTrail-Digest/:
// hashes of the log files, not events); an argument that is neither, with * ? or **, is a glob matched
// here (quoted, so that a month of files does not exceed the shell's argument limit): `*` and `?` within
// one path segment, `**` across any number. Files come in argument order, each directory's and glob's
// sorted by name; a file named twice is read once, where it is first named.
import { type Dirent, readdirSync, statSync } from 'node:fs'
import { join, resolve, sep } from 'node:path'
import { NerveError } from '../runtime/errors.ts'

const eventFile = /\.(?:json|ndjson|jsonl)(?:\.gz)?$|\.gz$/i

export function expandReplayInputs(args: readonly string[]): string[] {
  const files = new Map<string, string>()
  for (const arg of args) {
    const found = filesOf(arg)
    if (found.length === 0) {
      throw new NerveError('INPUT_INVALID', `${JSON.stringify(arg)} names no file to read.`)
    }
    for (const file of found) if (!files.has(resolve(file))) files.set(resolve(file), file)
  }
  return [...files.values()]
}

function filesOf(arg: string): string[] {
  const stat = statSync(arg, { throwIfNoEntry: false })
  if (stat?.isDirectory()) return walk(arg, () => true).sort()
  if (stat) return [arg]
  // Not there and no glob: the file system's own error, which the CLI words as every missing file.
  if (!/[*?]/.test(arg))
    throw Object.assign(new Error(`ENOENT: no such file or directory, stat '${arg}'`), {
      code: 'ENOENT',
      syscall: 'stat',
      path: arg,
    })
  const segments = arg.split(/[\\/]/)
  const firstWild = segments.findIndex((s) => /[*?]/.test(s))
  const base = segments.slice(0, firstWild).join(sep) || (arg.startsWith(sep) ? sep : '.')
  const pattern = globPathRegExp(arg)
  const prefix = base === '.' && !arg.startsWith('.') ? `.${sep}` : ''
  return walk(base, (path) => pattern.test(path.slice(prefix.length)), true).sort()
}

/** The files under `dir` whose path `matches`; `all` keeps every name (a glob says what it wants). */
function walk(dir: string, matches: (path: string) => boolean, all = false): string[] {
  const out: string[] = []
  const visit = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'CloudTrail-Digest') continue
      const path = join(at, entry.name)
      if (entry.isDirectory()) visit(path)
      else if (isFile(entry, path) && (all || eventFile.test(entry.name)) && matches(path)) out.push(path)
    }
  }
  visit(dir)
  return out
}

/** A file, or a link to one (links to directories are not followed: they could loop). */
function isFile(entry: Dirent, path: string): boolean {
  return (
    entry.isFile() || (entry.isSymbolicLink() && statSync(path, { throwIfNoEntry: false })?.isFile() === true)
  )
}

/** A path glob as a regular expression: `**` any run of segments, `*` and `?` within one segment. */
export function globPathRegExp(glob: string): RegExp {
  let body = ''
  for (let at = 0; at < glob.length; at++) {
    const ch = glob[at] as string
    if (ch === '*' && glob[at + 1] === '*') {
      const slash = glob[at + 2] === '/' || glob[at + 2] === '\\'
      body += slash ? '(?:.*[\\\\/])?' : '.*'
      at += slash ? 2 : 1
    } else if (ch === '*') body += '[^\\\\/]*'
    else if (ch === '?') body += '[^\\\\/]'
    else if (ch === '/' || ch === '\\') body += '[\\\\/]'
    else body += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')
  }
  return new RegExp(`^${body}$`, 's')
}
