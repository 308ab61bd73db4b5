// The compose stack's one-shot `secrets` service: makes, once, the random values the stack needs, in the
// directory given (the nerve-secrets volume). Existing files are kept, so a restart changes nothing.
// - ingest-token: nerve's ingest token (no ':' or ',', which Falcosidekick's WEBHOOK_CUSTOMHEADERS splits on)
// - elastic-password, kibana-password: the elastic and kibana_system users' passwords
// - kibana-encryption-key: Kibana's saved-objects, security and reporting encryption key (32+ characters)
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2] ?? '/run/nerve'
mkdirSync(dir, { recursive: true })
const values = {
  'ingest-token': () => `nrv_${randomBytes(24).toString('base64url')}`,
  'elastic-password': () => randomBytes(18).toString('base64url'),
  'kibana-password': () => randomBytes(18).toString('base64url'),
  'kibana-encryption-key': () => randomBytes(32).toString('hex'),
}
for (const [name, make] of Object.entries(values)) {
  const path = join(dir, name)
  if (existsSync(path)) continue
  // Readable by the other services' users (node, elasticsearch, kibana, falcosidekick); the volume is
  // mounted read-only into them and reaches no host path.
  writeFileSync(path, `${make()}\n`, { mode: 0o644, flag: 'wx' })
  process.stdout.write(`made ${name}\n`)
}
