/** scripts/ldd-guard.sh, the Docker build's check that the CUDA provider's libraries resolve. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeStandIns } from './standin.js';

const GUARD = fileURLToPath(new URL('../../../scripts/ldd-guard.sh', import.meta.url));
const s = makeStandIns();
after(() => s?.cleanup());

function guard(...args: string[]) {
  const r = spawnSync(GUARD, args, { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('ldd-guard.sh', { skip: s ? false : 'gcc not installed' }, () => {
  it('passes when every library of the providers resolves', () => {
    const r = guard(s!.good);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /libonnxruntime_providers_cuda\.so: every dependency found/);
  });

  it('fails on a provider that links a missing library, naming it', () => {
    const r = guard(s!.broken);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(`libonnxruntime_providers_cuda\\.so needs libraries the loader cannot find: ${s!.missing.replace(/\./g, '\\.')}`),
    );
  });

  it('fails when a provider library is absent', () => {
    const r = guard(s!.good, 'libonnxruntime_providers_tensorrt.so');
    assert.equal(r.code, 1);
    assert.match(r.err, /libonnxruntime_providers_tensorrt\.so is missing/);
  });

  it('is a usage error without a folder', () => {
    assert.equal(guard().code, 2);
    assert.equal(guard('/nonexistent/ilsvrc').code, 2);
  });
});
