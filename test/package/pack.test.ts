// The package as a user gets it: `npm pack` in a clean clone of this commit (its prepack builds;
// the clone borrows this checkout's node_modules for the build's development dependencies instead
// of downloading them), the tarball installed into a fresh ES-module project by a plain
// `npm install` with NuGet unreachable, the program of docs/api.md type-checked (strict, library
// declarations checked too) against the published declarations only, then run; its model,
// training, evaluation, pictures and predictions are compared with this build's own API.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYNTHETIC_CLASSES } from '../../src/data/index.js';
import { buildModel, evaluate, predict, summarize, visualize } from '../../src/index.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ilsvrc-pack-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The first TypeScript block of docs/api.md: the program the documentation promises works. */
function docProgram(markdown: string): string {
  const m = /```ts\n([\s\S]*?)```/.exec(markdown);
  assert.ok(m?.[1], 'docs/api.md has a ```ts program');
  return m[1];
}

/** Relative imports and `new URL('./…', import.meta.url)` files of the packed .js and .d.ts files that the package lacks, as "file -> target". */
function unpackedImports(files: readonly string[], read: (file: string) => string): string[] {
  const have = new Set(files);
  const missing: string[] = [];
  for (const f of files) {
    const dts = f.endsWith('.d.ts');
    if (!dts && !f.endsWith('.js')) continue;
    for (const m of read(f).matchAll(/(?:from |import\(|new URL\()'(\.\.?\/[^']+)'/g)) {
      let target = posix.join(posix.dirname(f), m[1]!);
      if (dts) target = target.replace(/\.js$/, '.d.ts');
      if (target.endsWith('.node')) continue; // the optional native JPEG addon, built on the user's machine
      if (!have.has(target)) missing.push(`${f} -> ${target}`);
    }
  }
  return missing;
}

/**
 * The environment of a consumer's npm: without what `npm test` passes down from this repository
 * (its package, its .npmrc's settings, its prefix) or any onnxruntime-node install flag, keeping the
 * machine's npm settings; NuGet unreachable, as on the networks where its download failed the install.
 */
function consumerEnv(): NodeJS.ProcessEnv {
  const keep = new Set([
    'npm_config_cache',
    'npm_config_userconfig',
    'npm_config_globalconfig',
    'npm_config_registry',
    'npm_config_cafile',
    'npm_config_proxy',
    'npm_config_https_proxy',
    'npm_config_noproxy',
    'npm_config_strict_ssl',
  ]);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || keep.has(k.toLowerCase())) env[k] = v;
  delete env['INIT_CWD'];
  for (const k of Object.keys(env)) if (/^ONNXRUNTIME_NODE_INSTALL/i.test(k)) delete env[k];
  // onnxruntime-node's install script downloads through global-agent: a proxy on a closed port makes NuGet unreachable.
  return { ...env, GLOBAL_AGENT_HTTP_PROXY: 'http://127.0.0.1:9', NODE_NO_WARNINGS: '1' };
}

function run(cmd: string, args: readonly string[], cwd: string, timeout: number): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: consumerEnv(), encoding: 'utf8', timeout, maxBuffer: 1 << 26 });
  assert.equal(
    r.status,
    0,
    `${cmd} ${args.join(' ')} in ${cwd} exited ${r.status ?? r.signal}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
  );
  return r;
}

test('a clean clone packs, and the tarball installs, type-checks and runs the documented program', { timeout: 420_000 }, async () => {
  // This commit as a user clones it: nothing built, nothing untracked.
  const clone = join(work, 'clone');
  run('git', ['clone', '--quiet', root, clone], work, 60_000);
  const head = (dir: string): string => run('git', ['rev-parse', 'HEAD'], dir, 10_000).stdout.trim();
  assert.equal(head(clone), head(root));
  assert.ok(!existsSync(join(clone, 'dist')));
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir');

  // What is published: the compiled library, its declarations, the docs, the preinstall; no tests, scripts or sources.
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', packDir], clone, 240_000).stdout) as {
    filename: string;
    files: { path: string }[];
  }[];
  const files = packed[0]!.files.map((f) => f.path);
  const published = ['package.json', 'README.md', 'docs/api.md', 'install/cuda-opt-in.cjs', 'dist/src/index.js', 'dist/src/index.d.ts'];
  for (const f of [...published, 'dist/src/cli/main.js']) assert.ok(files.includes(f), `the package has ${f}`);
  assert.deepEqual(
    unpackedImports(files, (f) => readFileSync(join(clone, f), 'utf8')),
    [],
    'every relative import (and worker URL) of the package is in it',
  );
  const stray = files.filter(
    (f) =>
      f.startsWith('dist/test/') ||
      f.startsWith('test/') ||
      f.startsWith('scripts/') ||
      f.endsWith('.map') ||
      (f.endsWith('.ts') && !f.endsWith('.d.ts')),
  );
  assert.deepEqual(stray, [], 'no tests, scripts, source maps or TypeScript sources in the package');
  const tarball = join(packDir, packed[0]!.filename);

  // A fresh project: ES module, strict, and the library's declarations checked (no skipLibCheck).
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ilsvrc-consumer', private: true, type: 'module' }));
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: false,
        types: ['node'],
        outDir: 'out',
      },
      files: ['main.ts', 'types.ts'],
    }),
  );
  writeFileSync(join(app, 'main.ts'), docProgram(readFileSync(join(clone, 'docs/api.md'), 'utf8')));
  // Each line below must be a type error; were the declarations missing or `any`, tsc would fail on an unused @ts-expect-error.
  writeFileSync(
    join(app, 'types.ts'),
    [
      "import { buildModel, evaluate, train, UsageError, visualize, type RunOptions } from 'ilsvrc';",
      '// @ts-expect-error width is a number',
      "buildModel('vgg-a', { width: '1/16' });",
      '// @ts-expect-error RunOptions has no such field',
      'export const o: RunOptions = { epochz: 1 };',
      'export const run = train;',
      "export const e: Error = new UsageError('x');",
      "// @ts-expect-error crop is one of the papers' protocols",
      "export const ev = evaluate('m.onnx', { crop: 'corner' });",
      '// @ts-expect-error occlusion looks at an image',
      "export const oc = visualize('occlusion', 'm.onnx', { out: 'x' });",
      "export const shape: readonly number[] = (await visualize('filters', 'm.onnx', {})).details.shape;",
      '// @ts-expect-error only the package root is exported',
      "export const deep = import('ilsvrc/dist/src/cli/main.js');",
      '',
    ].join('\n'),
  );
  const typesNode = (JSON.parse(readFileSync(join(root, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
  // A plain install: no install flag, scripts run as npm runs them by default.
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `@types/node@${typesNode}`], app, 180_000);
  assert.ok(!existsSync(join(app, 'node_modules/ilsvrc/dist/test')));
  if (process.platform === 'linux' && process.arch === 'x64') {
    const cuda = join(app, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so');
    assert.equal(statSync(cuda).size, 0, 'the CUDA provider is not downloaded: an empty placeholder');
  }

  run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(app, 'tsconfig.json')], app, 120_000);

  const dir = join(work, 'example');
  const out = run(process.execPath, [join(app, 'out/main.js'), dir], app, 120_000).stdout;

  // The same model as this build's API.
  const built = buildModel('vgg-a', { width: 1 / 16, inputSize: 32, classes: 4 });
  const s = summarize(built.graph, { outputs: [built.logits] });
  assert.match(out, new RegExp(`^vgg-a: ${s.params} parameters, ${s.macs} MACs per image$`, 'm'));
  assert.match(out, /^trained: 20 steps \(max-steps\), best top-1 (0|1)\.\d{3}$/m);
  const onnx = join(dir, 'vgg-a.onnx');
  assert.match(out, new RegExp(`^exported: ${onnx.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  assert.ok(existsSync(join(dir, 'run', 'last.safetensors')));

  // Its evaluation and pictures are this build's own on the same file.
  const ev = await evaluate(onnx, { out: join(work, 'eval'), threads: 1 });
  assert.match(out, new RegExp(`^evaluated: ${ev.n} images, top-1 error ${ev.top1_error_pct}%, top-5 error ${ev.top5_error_pct}%$`, 'm'));
  assert.ok(existsSync(join(dir, 'eval', 'per_class.csv')) && existsSync(join(dir, 'eval', 'confusion.png')));
  const filters = await visualize('filters', onnx, { out: join(work, 'filters.png') });
  assert.match(out, new RegExp(`^filters: ${filters.details.layer} ${filters.details.shape.join('x')}, .*filters\\.png$`, 'm'));
  assert.deepEqual(readFileSync(join(dir, 'filters.png')), filters.png, 'the same filters picture');

  // Its predictions are this build's own on the same file and image.
  const circles = join(dir, 'shapes', 'val', 'circle');
  // A PNG, as the program picks: JPEGs take this build's native decoder, which the package leaves out.
  const image = join(
    circles,
    readdirSync(circles)
      .sort()
      .find((f) => f.endsWith('.png'))!,
  );
  const occluded = await visualize('occlusion', onnx, { image, out: work, threads: 1 });
  const occlusionLine = `occlusion: ${occluded.details.class.name} ${occluded.details.clean.toFixed(4)}, ${join(dir, 'occlusion-')}`;
  assert.ok(
    out.split('\n').some((l) => l.startsWith(occlusionLine) && l.endsWith('.png')),
    `${occlusionLine}… in\n${out}`,
  );
  const [ours] = await predict(onnx, [image], { top: 3 });
  const want = ours!.top.map((t) => `predicted: ${SYNTHETIC_CLASSES[t.index]} ${t.probability.toFixed(4)}`);
  assert.deepEqual(
    out.split('\n').filter((l) => l.startsWith('predicted: ')),
    want,
  );

  // The installed command runs too.
  const models = run(join(app, 'node_modules/.bin/ilsvrc'), ['models'], app, 60_000).stdout;
  assert.match(models, /vgg-a/);
  if (process.platform === 'linux' && process.arch === 'x64') {
    // The CUDA provider was not downloaded: --device cuda names the one step that installs it.
    const cuda = spawnSync(join(app, 'node_modules/.bin/ilsvrc'), ['train', 'vgg-a', '--device', 'cuda', '--max-steps', '1'], {
      cwd: app,
      env: consumerEnv(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(cuda.status, 2, cuda.stderr);
    assert.match(cuda.stderr, /ONNXRUNTIME_NODE_INSTALL=true npm rebuild onnxruntime-node/);
  }
});
