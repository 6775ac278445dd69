/**
 * The layers point one way: a folder of src/ imports only from folders above it in LAYERS (and
 * from itself). Read from the source files, so a new edge against the order fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Lowest first; the same list as README "How it works, and where things are". */
export const LAYERS = [
  'util',
  'onnx',
  'graph',
  'ops',
  'autodiff',
  'optim',
  'nn',
  'zoo',
  'runtime',
  'data',
  'plot',
  'train',
  'trained',
  'import',
  'viz',
  'web',
  'cli',
  'index.ts',
] as const;

/**
 * Layers that may import only some of those above them: ONNX Runtime's layer knows ModelProtos and
 * tensors, not models, optimizers or training; the data pipeline and the plots are leaves.
 */
const ONLY: Readonly<Record<string, readonly string[]>> = {
  runtime: ['util', 'onnx', 'graph'],
  data: ['util'],
  plot: ['util'],
};

const src = resolve(fileURLToPath(new URL('../../../src', import.meta.url)));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The layer of a file under src/: its first folder, or the file name at the top. */
function layerOf(file: string): string {
  return relative(src, file).split('/')[0] ?? '';
}

test('every src/ folder is a known layer', () => {
  const unknown = [...new Set(files(src).map(layerOf))].filter((l) => !(LAYERS as readonly string[]).includes(l));
  assert.deepEqual(unknown, []);
});

test('imports point from a layer to the layers above it in the list, never down', () => {
  const bad: string[] = [];
  for (const file of files(src)) {
    const from = layerOf(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|new URL\(\s*)['"](\.\.?\/[^'"]+)['"]/g)) {
      if (!m[1]!.endsWith('.js')) continue; // a native addon or a data file, not a module of ours
      const target = resolve(dirname(file), m[1]!);
      const rel = relative(src, target);
      assert.ok(!rel.startsWith('..'), `${relative(src, file)} imports ${m[1]} from outside src/`);
      const to = layerOf(target.replace(/\.js$/, '.ts'));
      const only = ONLY[from];
      if (to !== from && (LAYERS.indexOf(to as never) > LAYERS.indexOf(from as never) || (only && !only.includes(to))))
        bad.push(`${relative(src, file)} (${from}) → ${m[1]} (${to})`);
    }
  }
  assert.deepEqual(bad, [], `imports against the layer order:\n${bad.join('\n')}`);
});

test('the page bundle (src/web) holds no Node-only module: ONNX Runtime is its one seam, read as ONNX Runtime Web', async () => {
  const { bundlePage } = await import('../../scripts/build-web.js');
  const inputs = Object.keys((await bundlePage(false)).metafile.inputs);
  const nodeOnly = inputs.filter((f) =>
    /^node:|node_modules\/(sharp|onnxruntime-node|@img)\/|\.node$|(^|\/)(fs|os|path|worker_threads)$/.test(f),
  );
  assert.deepEqual(nodeOnly, [], `Node-only modules in the page bundle:\n${nodeOnly.join('\n')}`);
  // The portable halves are in, their Node halves (files, sharp, the native update) are not.
  for (const f of [
    'src/data/synthetic-render.ts',
    'src/runtime/safetensors-format.ts',
    'src/train/checkpoint-format.ts',
    'src/train/graph-step.ts',
  ])
    assert.ok(inputs.includes(f), `${f} in the bundle`);
  for (const f of [
    'src/data/synthetic.ts',
    'src/runtime/safetensors.ts',
    'src/train/checkpoint.ts',
    'src/train/updater.ts',
    'src/optim/native.ts',
  ])
    assert.ok(!inputs.includes(f), `${f} kept out of the bundle`);
  const seam = inputs.filter(
    (f) => f.startsWith('src/') && readFileSync(resolve(src, '..', f), 'utf8').includes("from 'onnxruntime-node'"),
  );
  assert.deepEqual(seam, ['src/runtime/ort.ts']);
});
