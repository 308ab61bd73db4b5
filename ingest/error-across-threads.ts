// An error raised in a decoding thread, handed to the main thread as what it was: a NerveError keeps
// its code (the CLI prints its message in one line and exits 1), a system error its code, syscall and
// path (a vanished or unreadable file is the same one line as without threads), anything else its
// message and stack. postMessage's structured clone keeps an Error's message but not these fields.
import { type ErrorCode, isNerveError, NerveError } from '../runtime/errors.ts'

export type PostedError = {
  message: string
  stack?: string
  /** Set for a NerveError: its code. */
  nerveCode?: ErrorCode
  retriable?: boolean
  /** A system error's fields (ENOENT, EACCES …). */
  code?: string
  errno?: number
  syscall?: string
  path?: string
}

/** What of `err` crosses to another thread. */
export function postedError(err: unknown): PostedError {
  if (!(err instanceof Error)) return { message: String(err) }
  if (isNerveError(err))
    return { message: err.message, stack: err.stack, nerveCode: err.code, retriable: err.retriable }
  const e = err as Error & Omit<PostedError, 'message' | 'stack'>
  const posted: PostedError = { message: err.message, stack: err.stack }
  if (typeof e.code === 'string') posted.code = e.code
  if (typeof e.errno === 'number') posted.errno = e.errno
  if (typeof e.syscall === 'string') posted.syscall = e.syscall
  if (typeof e.path === 'string') posted.path = e.path
  return posted
}

/** The error again, on the receiving side: a NerveError of the same code, or an Error with its fields. */
export function errorFromThread(posted: PostedError): Error {
  const err =
    posted.nerveCode === undefined
      ? Object.assign(new Error(posted.message), {
          ...(posted.code === undefined ? {} : { code: posted.code }),
          ...(posted.errno === undefined ? {} : { errno: posted.errno }),
          ...(posted.syscall === undefined ? {} : { syscall: posted.syscall }),
          ...(posted.path === undefined ? {} : { path: posted.path }),
        })
      : new NerveError(posted.nerveCode, posted.message, { retriable: posted.retriable })
  if (posted.stack !== undefined) err.stack = posted.stack
  return err
}
