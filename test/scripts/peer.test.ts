// What the benchmarks say about the machine and the peer: parsed from /proc/cpuinfo text, the
// peer's interpreter chosen by ILSVRC_PEER_PYTHON, and a run under OPENBLAS_CORETYPE says so.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuInfo, describeSetup, forcedEnv, peerInfo, peerPython } from '../../scripts/peer.js';

const CPUINFO = `processor\t: 0\nmodel name\t: AMD EPYC 9R14 96-Core Processor\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_bf16 sha_ni\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14 96-Core Processor\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_bf16 sha_ni\n`;

describe('benchmark setup lines', () => {
  it('reads the model, the core count and the ISA flags that choose kernels', () => {
    assert.deepEqual(cpuInfo(CPUINFO), {
      model: 'AMD EPYC 9R14 96-Core Processor',
      cores: 2,
      isa: ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_bf16'],
    });
  });

  it('ILSVRC_PEER_PYTHON names the peer; one that cannot import torch is reported with its error', () => {
    assert.deepEqual(peerPython({ ILSVRC_PEER_PYTHON: '/opt/py/bin/python' }), {
      python: '/opt/py/bin/python',
      from: 'ILSVRC_PEER_PYTHON',
    });
    const p = peerInfo({ ...process.env, ILSVRC_PEER_PYTHON: '/nonexistent/python3' });
    assert.equal(p.torch, null);
    assert.match(p.error ?? '', /ENOENT/);
    assert.match(describeSetup(cpuInfo(CPUINFO), p, {}).join('\n'), /peer: none \(\/nonexistent\/python3 cannot import torch/);
  });

  it('a forced OPENBLAS_CORETYPE is printed, with whether the peer links OpenBLAS at all', () => {
    const forced = forcedEnv({ OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: '', PATH: '/bin' });
    assert.deepEqual(forced, { OPENBLAS_CORETYPE: 'Haswell' });
    const peer = (blas: string, blasLibs: string[]) => ({
      python: 'py',
      from: 'x',
      torch: '2.5.0',
      blas,
      blasLibs,
      onednn: 'v3.5',
      capability: 'AVX512',
    });
    // Debian's torch says "generic"; the library behind libblas.so.3 is what decides.
    const debian = peer('generic', ['/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3']);
    assert.match(describeSetup(cpuInfo(CPUINFO), debian, forced)[2] ?? '', /forces OPENBLAS_CORETYPE=Haswell \(the peer links OpenBLAS/);
    assert.match(describeSetup(cpuInfo(CPUINFO), peer('mkl', []), forced)[2] ?? '', /does not link OpenBLAS/);
    assert.equal(describeSetup(cpuInfo(CPUINFO), peer('mkl', []), {}).length, 2);
  });
});
