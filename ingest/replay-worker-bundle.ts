// Replay's decoding threads run plain JavaScript, bundled when the replay starts. A worker thread does
// not inherit the main thread's TypeScript loader: loading the decoding modules through tsx cost each
// thread about 26 MiB for the loader alone (Node.js 20 gives every thread that registers module hooks a
// hooks thread of its own), which put two decoding lanes over replay's 256 MiB. esbuild (tsx's own
// compiler) bundles the worker's TypeScript with the replay filter into the spill's private temp dir, so
// the code a thread runs is always the code of this checkout: there is no build step to forget and no
// stale build to find. What the bundle leaves as it is:
// - packages (ajv, the AWS SDK, …) stay imports, each rewritten to the file URL the main thread resolves
//   it to, so a thread loads the same files from node_modules as the main thread would (the bundle lives
//   in a temp dir, where a bare name would resolve to nothing), and a module loaded on first use
//   (the S3 client) is still loaded only then (its own chunk);
// - `import.meta.url`, `.dirname` and `.filename` in a bundled module are replaced by the module's own
//   source location, so what it reads beside itself (the schemas the validators load) is found.
import { readFile } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, type Plugin, stop } from 'esbuild'

/** The decoding thread's module; the bundle's entry hands it the replay filter's factory. */
const workerModule = fileURLToPath(new URL('./replay-decode-worker.ts', import.meta.url))

/**
 * Bundles the decoding thread with the module exporting `createReplayFilter` (filterModule) into
 * `dir` (created; the caller removes it), and gives back the URL of the entry to start threads with.
 */
export async function bundleDecodeWorker(dir: string, filterModule: URL): Promise<URL> {
  const outdir = join(dir, 'decode-worker')
  const entry = [
    `import { createReplayFilter } from ${JSON.stringify(fileURLToPath(filterModule))}`,
    `import { startDecodeWorker } from ${JSON.stringify(workerModule)}`,
    'startDecodeWorker(createReplayFilter)',
  ].join('\n')
  building++
  try {
    await bundle(entry, outdir)
  } finally {
    // esbuild keeps its service process (about 23 MiB resident, not counted in the replay's own peak
    // RSS) until the process exits unless stopped: once per replay, so stop it when no build is left.
    if (--building === 0) await stop()
  }
  return pathToFileURL(join(outdir, 'entry.mjs'))
}

/** Builds in flight in this thread: stopping esbuild's service would fail the others. */
let building = 0

async function bundle(entry: string, outdir: string): Promise<void> {
  await build({
    stdin: {
      contents: entry,
      resolveDir: import.meta.dirname,
      sourcefile: 'decode-worker-entry.js',
      loader: 'js',
    },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir,
    entryNames: 'entry',
    outExtension: { '.js': '.mjs' },
    logLevel: 'silent',
    plugins: [packagesWhereTheyAre, ownLocation],
  })
}

/** A package import stays an import, of the file the main thread would load for it. */
const packagesWhereTheyAre: Plugin = {
  name: 'packages-where-they-are',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (isBuiltin(args.path)) return { path: args.path, external: true }
      // One node_modules for the whole checkout: resolved from here, a package is the file it is for
      // every module of nerve.
      return { path: import.meta.resolve(args.path), external: true }
    })
  },
}

/** `import.meta.url` (and its dirname and filename) of a bundled module say where its source is. */
const ownLocation: Plugin = {
  name: 'own-location',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8')
      const contents = text
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
        .replaceAll('import.meta.dirname', JSON.stringify(join(args.path, '..')))
        .replaceAll('import.meta.filename', JSON.stringify(args.path))
      return { contents, loader: 'ts' }
    })
  },
}
