/** --device: parsing, session options per provider, the CUDA install hint, rephrased provider errors, K from memory. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { toModel } from '../../src/graph/serialize.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import {
  CPU_STEPS_PER_RUN,
  cpuStepsPerRun,
  cudaMemoryBytes,
  defaultStepsPerRun,
  MAX_STEPS_PER_RUN,
  STOP_RUN_MS,
  stepFootprint,
  stepsPerRunFor,
} from '../../src/train/steps-per-run.js';
import {
  CUDA_INSTALL_HINT,
  createDeviceSession,
  missingCudaLibraries,
  parseDevice,
  parseLdd,
  probeDevice,
  rephraseProviderError,
  resolveDevice,
  sessionOptionsFor,
} from '../../src/runtime/device.js';
import { DEFAULT_TABLE, lower, runStage } from '../../src/runtime/lower/index.js';
import { sumAsAdds } from '../../src/runtime/lower/sum-as-adds.js';
import { createSession, tensor } from '../../src/runtime/ort.js';
import { Rng } from '../../src/util/rng.js';
import { encodeModel } from '../../src/onnx/proto.js';
import { opUses } from '../../src/runtime/providers.js';
import { buildTrainGraph } from '../../src/train/graphs.js';
import { loopModel } from '../../src/train/loop.js';
import { UsageError } from '../../src/util/errors.js';
import { assertUsageError, ilsvrc } from '../cli/run.js';
import { makeStandIns } from '../docker/standin.js';

const empty = mkdtempSync(join(tmpdir(), 'ilsvrc-device-'));
const standIns = makeStandIns();
after(() => {
  rmSync(empty, { recursive: true, force: true });
  standIns?.cleanup();
});

const GiB = 2 ** 30;

function trainModel(model: string, loop: boolean): ModelProto {
  const tg = buildTrainGraph(
    {
      model,
      modelOptions: { width: 0.125, inputSize: model === 'vgg-a' ? 32 : 127, classes: 10 },
      batch: 2,
      optimizer: DEFAULT_OPTIMIZER,
      labelSmoothing: 0,
      frozen: new Set(),
    },
    'step',
  );
  // As CUDA and WebGPU take it: the composites written out.
  return lower(loop ? loopModel(tg) : toModel(tg.graph, { paramsAsInputs: true }), DEFAULT_TABLE, { block: 0 });
}

describe('parseDevice', () => {
  it('reads cpu, cuda, cuda:N and webgpu', () => {
    assert.deepEqual(parseDevice('cpu'), { kind: 'cpu', id: 0, text: 'cpu' });
    assert.deepEqual(parseDevice('cuda'), { kind: 'cuda', id: 0, text: 'cuda' });
    assert.deepEqual(parseDevice('CUDA:3'), { kind: 'cuda', id: 3, text: 'cuda:3' });
    assert.deepEqual(parseDevice('webgpu'), { kind: 'webgpu', id: 0, text: 'webgpu' });
  });

  it('rejects anything else, naming --device', () => {
    for (const bad of ['gpu', 'cuda:', 'cuda:x', 'cuda:-1', 'webgpu:0', '', 'tensorrt']) {
      assert.throws(
        () => parseDevice(bad),
        (e: Error) => e instanceof UsageError && e.message.includes('--device') && e.message.includes('cuda:N'),
        bad,
      );
    }
  });
});

describe('resolveDevice', () => {
  it('cpu: the CPU provider, threads passed on, no extra config', () => {
    assert.deepEqual(resolveDevice('cpu', { threads: 2 }).session, { threads: 2, providers: ['cpu'] });
    assert.deepEqual(resolveDevice('cpu').session, { providers: ['cpu'] });
  });

  it('cuda without the provider libraries: a UsageError with the install hint', () => {
    assert.deepEqual(missingCudaLibraries(empty), ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']);
    assert.throws(
      () => resolveDevice('cuda:1', { bindingDir: empty }),
      (e: Error) =>
        e instanceof UsageError &&
        e.message.includes('ONNXRUNTIME_NODE_INSTALL=true npm rebuild onnxruntime-node') &&
        e.message.includes('Docker') &&
        e.message.includes('--device cuda:1'),
    );
  });

  it(
    'cuda with the libraries: the CUDA provider on that device, CPU fallback off',
    { skip: standIns ? false : 'gcc not installed' },
    () => {
      const r = resolveDevice('cuda:1', { bindingDir: standIns!.good });
      assert.deepEqual(r.session, { providers: [{ name: 'cuda', deviceId: 1 }], extra: { 'session.disable_cpu_ep_fallback': '1' } });
    },
  );

  it(
    'cuda whose provider links a library the loader cannot find: named, before onnxruntime loads it',
    { skip: standIns ? false : 'gcc not installed' },
    () => {
      assert.throws(
        () => resolveDevice('cuda', { bindingDir: standIns!.broken }),
        (e: Error) => e instanceof UsageError && e.message.includes(standIns!.missing) && e.message.includes('cuDNN'),
      );
    },
  );

  it('webgpu: the WebGPU provider, CPU fallback allowed (LRN, Dropout have no kernel there)', () => {
    assert.deepEqual(resolveDevice('webgpu').session, { providers: [{ name: 'webgpu' }] });
  });

  it('parses ldd output', () => {
    const out =
      '\tlinux-vdso.so.1 (0x0000)\n\tlibcudnn.so.9 => not found\n\tlibcublasLt.so.13 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x0)\n\tlibcudnn.so.9 => not found\n';
    assert.deepEqual(parseLdd(out), ['libcudnn.so.9', 'libcublasLt.so.13']);
  });
});

describe('graphs per device', () => {
  it('cuda: a graph op without a CUDA kernel is an error naming the op', () => {
    const m = trainModel('vgg-a', false);
    const o = resolveDevice('cpu').session;
    const cuda = { providers: [{ name: 'cuda', deviceId: 0 }], extra: { 'session.disable_cpu_ep_fallback': '1' } };
    assert.equal(sessionOptionsFor(cuda, m), cuda, 'the zoo graphs have CUDA kernels throughout');
    const bad: ModelProto = {
      ...m,
      graph: { ...m.graph, node: [...m.graph.node, { opType: 'SoftmaxCrossEntropyLoss', input: ['a', 'b'], output: ['c'] }] },
    };
    assert.throws(() => sessionOptionsFor(cuda, bad), /SoftmaxCrossEntropyLoss.*CUDA/);
    assert.equal(sessionOptionsFor(o, bad), o);
  });

  it('webgpu: every MaxPool with indices (Loop body included) is pinned to the CPU by name', () => {
    for (const loop of [false, true]) {
      const m = trainModel('alexnet', loop);
      const o = sessionOptionsFor(resolveDevice('webgpu').session, m);
      const p = o.providers?.[0] as { name: string; forceCpuNodeNames?: string[] };
      assert.equal(p.name, 'webgpu');
      assert.equal(p.forceCpuNodeNames?.length, opUses(m).get('MaxPool:Indices'));
      assert.ok(p.forceCpuNodeNames!.every((n) => n.includes('MaxPool')));
    }
  });
});

describe('provider failures', () => {
  it('rephrases onnxruntime messages as one line', () => {
    const cuda = parseDevice('cuda');
    const load = rephraseProviderError(new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'), cuda);
    assert.ok(load instanceof UsageError && load.message.includes(CUDA_INSTALL_HINT));
    const none = rephraseProviderError(new Error('CUDA failure 100: no CUDA-capable device is detected ; GPU=0'), cuda);
    assert.match(none!.message, /no usable CUDA device 0.*--gpus all/);
    const gpu = rephraseProviderError(
      new Error('webgpu_context.cc:136 Failed to get a WebGPU adapter: No supported adapters\n'),
      parseDevice('webgpu'),
    );
    assert.match(gpu!.message, /no WebGPU adapter/);
    assert.equal(rephraseProviderError(new Error('shape mismatch'), cuda), undefined);
  });

  it('a CUDA session whose libraries are missing fails as a UsageError, not a loader error', async () => {
    if (missingCudaLibraries().length === 0) return; // this machine has the CUDA provider
    const cuda = { providers: [{ name: 'cuda', deviceId: 0 }], extra: { 'session.disable_cpu_ep_fallback': '1' } };
    await assert.rejects(
      createDeviceSession(trainModel('vgg-a', false), cuda, parseDevice('cuda')),
      (e: Error) => e instanceof UsageError && e.message.includes(CUDA_INSTALL_HINT),
    );
  });

  it('webgpu: runs where an adapter exists, else a UsageError saying none was found', async () => {
    try {
      await probeDevice(resolveDevice('webgpu'));
    } catch (e) {
      assert.ok(e instanceof UsageError, String(e));
      assert.match(e.message, /no WebGPU adapter/);
    }
  });

  it('ilsvrc train --device cuda without the CUDA provider: the install hint, exit 2', async () => {
    if (missingCudaLibraries().length === 0) return;
    const r = await ilsvrc(['train', 'vgg-a', '--device', 'cuda', '--max-steps', '1']);
    assertUsageError(r, 'ONNXRUNTIME_NODE_INSTALL=true npm rebuild onnxruntime-node', '--device cuda');
  });

  it('ilsvrc train --device gpu: a usage error naming --device', async () => {
    assertUsageError(await ilsvrc(['train', '--device', 'gpu']), '--device');
  });
});

describe('steps per run from device memory', () => {
  const vggD = { model: 'vgg-d', modelOptions: {}, batch: 64, optimizer: DEFAULT_OPTIMIZER };

  it('counts parameters, optimizer state, activations and per-step inputs', () => {
    const f = stepFootprint('vgg-d', {}, DEFAULT_OPTIMIZER);
    assert.equal(f.params, 138_357_544);
    assert.equal(f.state, f.params, 'one momentum buffer per parameter');
    assert.ok(f.inputsPerSample >= 3 * 224 * 224);
    assert.ok(f.activationsPerSample > 10e6 && f.activationsPerSample < 60e6, String(f.activationsPerSample));
    assert.equal(stepFootprint('vgg-d', {}, { ...DEFAULT_OPTIMIZER, kind: 'adamw' }).state, 2 * f.params);
  });

  it('grows with memory up to the cap, and is 1 when one step may not fit', () => {
    const f = stepFootprint('vgg-d', {}, DEFAULT_OPTIMIZER);
    const ks = [4, 8, 16, 24, 40, 80, 140].map((g) => stepsPerRunFor(f, 64, g * GiB));
    for (let i = 1; i < ks.length; i++) assert.ok(ks[i]! >= ks[i - 1]!, ks.join(','));
    assert.equal(ks[0], 1);
    assert.equal(ks.at(-1), MAX_STEPS_PER_RUN);
    assert.equal(stepsPerRunFor(f, 64, 140 * GiB, 8), 8);
  });

  it('defaults: cpu from the parameter round trip against the step, webgpu 1, cuda from nvidia-smi memory', () => {
    const cpu = parseDevice('cpu');
    // The Loop's K (the graph update); test/train/steps-per-run.test.ts has the in-place update's.
    const at = (model: string, batch: number) =>
      defaultStepsPerRun(cpu, { model, modelOptions: {}, batch, optimizer: DEFAULT_OPTIMIZER, update: 'graph' });
    // Light parameters against heavy steps: one step per run (less memory, no Loop copies).
    assert.equal(at('nin', 16).k, 1);
    assert.equal(at('googlenet', 16).k, 1);
    assert.equal(at('vgg-d', 32).k, 1);
    // AlexNet's 61 M parameters against a light step would ask for the most steps per run, but a
    // run is kept to about a second, so that a stop is acted on promptly (0.33 s steps: 3; 0.66 s: 1).
    assert.ok(at('alexnet', 4).k >= CPU_STEPS_PER_RUN);
    assert.equal(at('alexnet', 8).k, 3);
    assert.equal(at('alexnet', 16).k, 1);
    assert.equal(at('vgg-a', 8).k, 1);
    assert.match(at('alexnet', 16).reason, /parameters and state take ~\d+ ms to move per run against ~\d+ ms per step/);
    for (const [m, b] of [
      ['alexnet', 8],
      ['alexnet', 32],
      ['vgg-a', 8],
      ['nin', 4],
    ] as const) {
      const c = cpuStepsPerRun(stepFootprint(m, {}, DEFAULT_OPTIMIZER), b);
      assert.ok(c.k === 1 || c.k * c.stepMs <= STOP_RUN_MS, `${m} at batch ${b}: ${c.k} steps of ${c.stepMs} ms`);
    }
    // Small models at small sizes: short steps, so as many per run as fill about a second, at most 16.
    const small = (batch: number) =>
      defaultStepsPerRun(cpu, {
        model: 'vgg-a',
        modelOptions: { width: 0.25, inputSize: 32, channels: 1, classes: 10 },
        batch,
        optimizer: DEFAULT_OPTIMIZER,
      }).k;
    assert.ok(small(128) >= 8 && small(128) <= MAX_STEPS_PER_RUN, String(small(128)));
    assert.equal(small(16), MAX_STEPS_PER_RUN);
    // A bigger batch never asks for more steps per run.
    const ks = [8, 16, 32, 64, 128, 256].map((b) => at('alexnet', b).k);
    for (let i = 1; i < ks.length; i++) assert.ok(ks[i]! <= ks[i - 1]!, ks.join(','));
    assert.equal(ks.at(-1), 1);
    assert.equal(defaultStepsPerRun(parseDevice('webgpu'), vggD).k, 1);
    const alex = { ...vggD, model: 'alexnet', batch: 128 };
    const big = defaultStepsPerRun(parseDevice('cuda'), alex, 80 * GiB);
    assert.equal(big.k, MAX_STEPS_PER_RUN);
    assert.match(big.reason, /GiB estimated for 16 steps per run of 80\.0 GiB/);
    assert.ok(defaultStepsPerRun(parseDevice('cuda'), alex, 4 * GiB).k < MAX_STEPS_PER_RUN);
    // VGG-D's steps are long even on a GPU: one per run, so that a stop waits for one step only.
    assert.equal(defaultStepsPerRun(parseDevice('cuda'), vggD, 80 * GiB).k, 1);
    assert.match(defaultStepsPerRun(parseDevice('cuda'), vggD, 80 * GiB).reason, /runs kept to about a second/);
  });

  it('reads nvidia-smi, and says nothing when it cannot run', () => {
    assert.equal(
      cudaMemoryBytes(0, () => '81559\n'),
      81559 * 2 ** 20,
    );
    assert.equal(
      cudaMemoryBytes(1, (_c, args) => (args.includes('--id=1') ? '40960' : 'x')),
      40960 * 2 ** 20,
    );
    assert.equal(
      cudaMemoryBytes(0, () => {
        throw new Error('ENOENT');
      }),
      undefined,
    );
    assert.equal(
      cudaMemoryBytes(0, () => 'No devices were found'),
      undefined,
    );
  });
});

describe('sumAsAdds (WebGPU has no Sum kernel)', () => {
  it('turns every Sum of a training step into Adds and computes the same step', async () => {
    const model = trainModel('alexnet', false);
    const ops = (m: ModelProto) => m.graph.node.map((n) => n.opType);
    assert.ok(ops(model).filter((o) => o === 'Sum').length > 0, 'the SGD update uses Sum');
    const rewritten = runStage(model, [sumAsAdds], { block: 0 });
    assert.equal(ops(rewritten).filter((o) => o === 'Sum').length, 0);
    assert.equal(ops(model).length, model.graph.node.length, 'the original is left as it was');
    const rng = new Rng(4);
    const feeds: Record<string, ReturnType<typeof tensor>> = {};
    for (const i of model.graph.input) {
      const t = i.type?.tensorType;
      const dims = (t?.shape?.dim ?? []).map((d) => Number(d.dimValue ?? 1));
      const n = dims.reduce((a, b) => a * b, 1);
      feeds[i.name] =
        t?.elemType === 7
          ? tensor(
              'int64',
              BigInt64Array.from({ length: n }, () => BigInt(rng.int(10))),
              dims,
            )
          : tensor(
              'float32',
              Float32Array.from({ length: n }, () => rng.normal() * 0.05),
              dims,
            );
    }
    const a = await (await createSession(encodeModel(model), { threads: 1 })).run(feeds);
    const b = await (await createSession(encodeModel(rewritten), { threads: 1 })).run(feeds);
    for (const name of Object.keys(a)) {
      const x = a[name]!.data as Float32Array;
      const y = b[name]!.data as Float32Array;
      for (let i = 0; i < x.length; i++)
        assert.ok(Math.abs(x[i]! - y[i]!) <= 1e-6 * (1 + Math.abs(x[i]!)), `${name}[${i}]: ${x[i]} vs ${y[i]}`);
    }
  });
});
