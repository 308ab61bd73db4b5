// The console at GET /: one HTML page, its script and its style, read once from sinks/console/ and served
// as they are (no build step, nothing fetched from elsewhere, so it works offline). The page holds no data:
// it reads the same read API as any client, with the same auth, so serving it needs none. Much of what it
// shows is written by the watched agent, so the page puts text on screen only as text, and the
// Content-Security-Policy allows no script, style or connection but the server's own, and (Trusted Types)
// no string written as HTML: a change that used innerHTML would throw rather than run the agent's text.
import { readFileSync } from 'node:fs'
import type { Route } from '../runtime/http-routes.ts'

const asset = (name: string) => readFileSync(new URL(`./console/${name}`, import.meta.url), 'utf8')

const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
}

export function consoleRoutes(): Route[] {
  const files: [string, string, string][] = [
    ['/', 'console.html', 'text/html; charset=utf-8'],
    ['/console/console.js', 'console.js', 'text/javascript; charset=utf-8'],
    ['/console/console.css', 'console.css', 'text/css; charset=utf-8'],
  ]
  return files.map(([url, name, type]) => {
    const body = asset(name)
    return {
      method: 'GET',
      url,
      auth: 'none',
      handle: async () => ({ status: 200, body, headers: { ...securityHeaders, 'content-type': type } }),
    }
  })
}
