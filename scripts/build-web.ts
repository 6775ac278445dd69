/**
 * scripts/build-web: bundles the training page (src/web/page.ts) for browsers into dist/web/app.js
 * beside web/index.html. ONNX Runtime's JavaScript API is the page's through one seam: the bundle
 * reads `onnxruntime-node` (src/runtime/ort.ts) as ONNX Runtime Web (src/web/ort-web.ts), which
 * the page loads from `ilsvrc serve`'s /ort/ as it is shipped (its WebAssembly and thread workers
 * find their files beside it). Anything else Node-only in the page's imports fails this build.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The page bundle's build (written, or only planned with `write: false` for the layering test). */
export function bundlePage(write: boolean): Promise<esbuild.BuildResult<{ metafile: true; write: boolean }>> {
  return esbuild.build({
    absWorkingDir: root,
    entryPoints: ['src/web/page.ts'],
    outfile: 'dist/web/app.js',
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: false,
    sourcemap: false,
    metafile: true,
    write,
    logLevel: 'error',
    alias: { 'onnxruntime-node': './src/web/ort-web.ts' },
    external: ['onnxruntime-web'],
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(`${root}/dist/web`, { recursive: true });
  copyFileSync(`${root}/web/index.html`, `${root}/dist/web/index.html`);
  const r = await bundlePage(true);
  const bytes = Object.values(r.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
  // stderr: `npm pack --json` (prepack builds) reads stdout as its JSON.
  process.stderr.write(`build-web: dist/web/app.js (${(bytes / 1024).toFixed(0)} KiB)\n`);
}
