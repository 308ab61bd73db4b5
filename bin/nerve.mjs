#!/usr/bin/env node
// The `nerve` bin. The sources are TypeScript run through tsx, so `npm install` is all a checkout needs.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../nerve.ts')
process.exitCode = await main(process.argv.slice(2))
