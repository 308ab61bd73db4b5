// A private CA, a server certificate for 127.0.0.1 and a client certificate it signed, plus a self-signed
// client certificate no CA vouches for: made with openssl for one test run, in `dir`.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'])
    return true
  } catch {
    return false
  }
})()

export type TestCertificates = {
  ca: string
  server: { cert: string; key: string }
  client: { cert: string; key: string }
  stranger: { cert: string; key: string }
}

export function makeTestCertificates(dir: string): TestCertificates {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  const selfSigned = (name: string, cn: string) =>
    openssl(
      'req',
      '-x509',
      ...key,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-subj',
      cn,
    )
  selfSigned('ca', '/CN=nerve-test-ca')
  selfSigned('stranger', '/CN=nerve-stranger')
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n')
  for (const [name, cn, ext] of [
    ['server', '127.0.0.1', ['-extfile', 'server.ext']],
    ['client', 'nerve-revoker', []],
  ] as const) {
    openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      ...ext,
    )
  }
  const pair = (name: string) => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) })
  return {
    ca: join(dir, 'ca.crt'),
    server: pair('server'),
    client: pair('client'),
    stranger: pair('stranger'),
  }
}
