// Globs as the config writes them (agent registry, correlation rules): `*` any run of characters (slashes
// and newlines included), `?` one character, everything else literal and case-sensitive, anchored.
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}/]/g, '\\$&')))
    .join('')
  return new RegExp(`^${body}$`, 's')
}
