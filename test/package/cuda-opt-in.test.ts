// The package's preinstall (install/cuda-opt-in.cjs) against onnxruntime-node's own install script,
// run as npm runs them for a project that installs the package: the preinstall first, then
// onnxruntime-node's postinstall, with NuGet unreachable (scripts/torture-cases/install.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { DOWNLOADS_CUDA, installLayout, installScript } from '../../scripts/torture-cases/install.js';
import { missingCudaLibraries } from '../../src/runtime/cuda-libraries.js';

const work = mkdtempSync(join(tmpdir(), 'ilsvrc-cuda-opt-in-'));
after(() => rmSync(work, { recursive: true, force: true }));
const skip = DOWNLOADS_CUDA ? false : 'onnxruntime-node downloads only on linux/x64';
const FAILED_DOWNLOAD = /ECONNREFUSED|ENOTFOUND|socket hang up/;

test('onnxruntime-node alone reaches for NuGet on install, and fails where it cannot', { skip }, () => {
  const p = installLayout(join(work, 'alone'));
  const r = installScript(join(p.ort, 'script', 'install.js'), p.ort);
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, FAILED_DOWNLOAD);
});

test('the preinstall makes the CUDA download opt-in: placeholders, which the runtime counts missing', { skip }, () => {
  const p = installLayout(join(work, 'with-package'));
  const pre = installScript(p.preinstall, dirname(dirname(p.preinstall)));
  assert.equal(pre.status, 0, pre.out);
  const post = installScript(join(p.ort, 'script', 'install.js'), p.ort);
  assert.equal(post.status, 0, `onnxruntime-node's install after the preinstall:\n${post.out}`);
  for (const f of ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'])
    assert.equal(statSync(join(p.bin, f)).size, 0, `${f} is an empty placeholder`);
  assert.deepEqual(missingCudaLibraries(p.bin), ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']);

  // The documented CUDA step (ONNXRUNTIME_NODE_INSTALL=true) forces the download over the placeholders: it reaches for the feed.
  const cuda = installScript(join(p.ort, 'script', 'install.js'), p.ort, { ONNXRUNTIME_NODE_INSTALL: 'true' });
  assert.notEqual(cuda.status, 0, cuda.out);
  assert.match(cuda.out, FAILED_DOWNLOAD);
});

test('an install flag is left to onnxruntime-node: the preinstall writes nothing', () => {
  const p = installLayout(join(work, 'flagged'));
  const pre = installScript(p.preinstall, dirname(dirname(p.preinstall)), { npm_config_onnxruntime_node_install: 'cuda12' });
  assert.equal(pre.status, 0, pre.out);
  assert.throws(() => statSync(join(p.ort, 'bin')), /ENOENT/);
});
