// ilsvrc's preinstall (install/cuda-opt-in.cjs) against onnxruntime-node's own install script, run as
// npm runs them for a project that installs ilsvrc: the preinstall first, then onnxruntime-node's
// postinstall, with NuGet unreachable (a proxy on a closed port: where the feed is reachable, a
// download would still fail loudly, not pass).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { missingCudaLibraries } from '../../src/runtime/cuda-libraries.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ilsvrc-cuda-opt-in-'));
after(() => rmSync(work, { recursive: true, force: true }));

const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

/** A project with ilsvrc's install/ and onnxruntime-node's package.json and scripts (its dependencies found through NODE_PATH). */
function project(name: string): { dir: string; ort: string; bin: string } {
  const dir = join(work, name);
  const ort = join(dir, 'node_modules', 'onnxruntime-node');
  mkdirSync(ort, { recursive: true });
  const from = join(root, 'node_modules', 'onnxruntime-node');
  cpSync(join(from, 'package.json'), join(ort, 'package.json'));
  cpSync(join(from, 'script'), join(ort, 'script'), { recursive: true });
  cpSync(join(root, 'install'), join(dir, 'node_modules', 'ilsvrc', 'install'), { recursive: true });
  return { dir, ort, bin: join(ort, 'bin', 'napi-v6', process.platform, process.arch) };
}

/** Node on `script` in `cwd` as npm runs a dependency's script: no npm settings of this checkout, NuGet unreachable. */
function node(script: string, cwd: string, extra: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|ONNXRUNTIME_NODE_INSTALL)/i.test(k)) env[k] = v;
  Object.assign(env, { NODE_PATH: join(root, 'node_modules'), GLOBAL_AGENT_HTTP_PROXY: 'http://127.0.0.1:9' }, extra);
  const r = spawnSync(process.execPath, [script], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('onnxruntime-node alone reaches for NuGet on install, and fails where it cannot', (t) => {
  if (!linuxX64) return t.skip('onnxruntime-node downloads only on linux/x64');
  const p = project('alone');
  const r = node(join(p.ort, 'script', 'install.js'), p.ort);
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /ECONNREFUSED|ENOTFOUND|socket hang up/);
});

test("ilsvrc's preinstall makes the CUDA download opt-in: placeholders, and the runtime counts them missing", (t) => {
  if (!linuxX64) return t.skip('onnxruntime-node downloads only on linux/x64');
  const p = project('with-ilsvrc');
  const pre = node(join(p.dir, 'node_modules', 'ilsvrc', 'install', 'cuda-opt-in.cjs'), join(p.dir, 'node_modules', 'ilsvrc'));
  assert.equal(pre.status, 0, pre.out);
  const post = node(join(p.ort, 'script', 'install.js'), p.ort);
  assert.equal(post.status, 0, `onnxruntime-node's install after ilsvrc's preinstall:\n${post.out}`);
  for (const f of ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'])
    assert.equal(statSync(join(p.bin, f)).size, 0, `${f} is an empty placeholder`);
  assert.deepEqual(missingCudaLibraries(p.bin), ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']);

  // The documented CUDA step (ONNXRUNTIME_NODE_INSTALL=true) forces the download over the placeholders: here it reaches for the feed.
  const cuda = node(join(p.ort, 'script', 'install.js'), p.ort, { ONNXRUNTIME_NODE_INSTALL: 'true' });
  assert.notEqual(cuda.status, 0, cuda.out);
  assert.match(cuda.out, /ECONNREFUSED|ENOTFOUND|socket hang up/);
});

test('an install flag is left to onnxruntime-node: the preinstall writes nothing', () => {
  const p = project('flagged');
  const pre = node(join(p.dir, 'node_modules', 'ilsvrc', 'install', 'cuda-opt-in.cjs'), join(p.dir, 'node_modules', 'ilsvrc'), {
    npm_config_onnxruntime_node_install: 'cuda12',
  });
  assert.equal(pre.status, 0, pre.out);
  assert.throws(() => statSync(join(p.ort, 'bin')), /ENOENT/);
});
