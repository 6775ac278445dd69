// The package as a user gets it: `npm pack` of this build, installed into a fresh ES-module
// project, the program of docs/api.md type-checked (strict, library declarations checked too)
// against the published declarations only, then run; its model, training and predictions are
// compared with this build's own API.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYNTHETIC_CLASSES } from '../../src/data/index.js';
import { buildModel, predict, summarize } from '../../src/index.js';

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
 * (its package, its .npmrc's ignore-scripts, its prefix), keeping the machine's npm settings.
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
  // onnxruntime-node's install script would download CUDA binaries from NuGet; the CPU provider ships in the package.
  return { ...env, ONNXRUNTIME_NODE_INSTALL: 'skip', NODE_NO_WARNINGS: '1' };
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

test('the packed package installs, type-checks and runs the documented program', { timeout: 240_000 }, async () => {
  for (const f of ['dist/src/index.js', 'dist/src/index.d.ts']) assert.ok(existsSync(join(root, f)), `${f} is built (npm run build)`);

  // What is published: the compiled library, its declarations, the zoo, the docs; no tests, scripts or sources.
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', packDir], root, 60_000).stdout) as {
    filename: string;
    files: { path: string }[];
  }[];
  const files = packed[0]!.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'docs/api.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js'])
    assert.ok(files.includes(f), `the package has ${f}`);
  assert.deepEqual(
    unpackedImports(files, (f) => readFileSync(join(root, f), 'utf8')),
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
  writeFileSync(join(app, 'main.ts'), docProgram(readFileSync(join(root, 'docs/api.md'), 'utf8')));
  // Each line below must be a type error; were the declarations missing or `any`, tsc would fail on an unused @ts-expect-error.
  writeFileSync(
    join(app, 'types.ts'),
    [
      "import { buildModel, train, UsageError, type RunOptions } from 'ilsvrc';",
      '// @ts-expect-error width is a number',
      "buildModel('vgg-a', { width: '1/16' });",
      '// @ts-expect-error RunOptions has no such field',
      'export const o: RunOptions = { epochz: 1 };',
      'export const run = train;',
      "export const e: Error = new UsageError('x');",
      '// @ts-expect-error only the package root is exported',
      "export const deep = import('ilsvrc/dist/src/cli/main.js');",
      '',
    ].join('\n'),
  );
  const typesNode = (JSON.parse(readFileSync(join(root, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `@types/node@${typesNode}`], app, 180_000);
  assert.ok(!existsSync(join(app, 'node_modules/ilsvrc/dist/test')));

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

  // Its predictions are this build's own on the same file and image.
  const circles = join(dir, 'shapes', 'val', 'circle');
  // A PNG, as the program picks: JPEGs take this build's native decoder, which the package leaves out.
  const image = join(
    circles,
    readdirSync(circles)
      .sort()
      .find((f) => f.endsWith('.png'))!,
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
});
