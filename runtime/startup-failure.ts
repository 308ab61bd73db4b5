// One clear line for the system errors that stop a command at start-up (a port in use, an address that is
// not this machine's, a file that is not there or is a directory), instead of a Node.js stack trace.
// Undefined for anything else: a real bug keeps its stack. Pure.

type SystemError = Error & { code?: string; syscall?: string; path?: string; address?: string; port?: number }

export function startupFailureLine(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined
  const e = err as SystemError
  const where = e.port === undefined ? e.address : `${e.address}:${e.port}`
  if (e.syscall === 'listen' || e.syscall === 'bind') {
    if (e.code === 'EADDRINUSE')
      return `cannot listen on ${where}: the port is already in use (set NERVE_HTTP_PORT or http.port).`
    if (e.code === 'EADDRNOTAVAIL')
      return `cannot listen on ${where}: not an address of this machine (set NERVE_HTTP_HOST or http.host).`
    if (e.code === 'EACCES')
      return `cannot listen on ${where}: permission denied (ports below 1024 need privileges).`
  }
  const path = e.path ?? 'one of the paths given'
  switch (e.code) {
    case 'ENOENT':
      return `${path}: no such file or directory.`
    case 'EISDIR':
      return `${path} is a directory, not a file.`
    case 'ENOTDIR':
      return `${path}: a part of the path is not a directory.`
    case 'EACCES':
    case 'EPERM':
      return `${path}: permission denied.`
    default:
      return undefined
  }
}
