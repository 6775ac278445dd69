/**
 * Exported models at width 0.125 (full-width weights are never materialised here): onnxruntime-node
 * runs each with a dynamic batch, Debian's ONNX checker accepts them at opset 17, and the
 * serialisation round-trips byte for byte.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { MODELS, buildModel, type BuiltModel } from '../../src/zoo/index.js';
import { initParams } from '../../src/graph/init.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { checkpointWeights, exportInferenceModel, inferenceParams, METADATA } from '../../src/zoo/export.js';
import { loadSafetensors, saveSafetensors, type Tensor } from '../../src/runtime/safetensors.js';
import { UsageError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SMALL = { width: 0.125, classes: 10 } as const;

function exported(name: string, opset: 17 | 18 = 18, seed = 1): { built: BuiltModel; bytes: Uint8Array } {
  const built = buildModel(name, SMALL);
  const bytes = exportInferenceModel(built, initParams(inferenceParams(built), seed), { opset });
  return { built, bytes };
}

/** Deterministic pseudo-random input in [-1, 1). */
function input(n: number, c: number, s: number): ort.Tensor {
  const data = new Float32Array(n * c * s * s);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 500 - 1;
  return new ort.Tensor('float32', data, [n, c, s, s]);
}

describe('onnxruntime-node runs every exported model', () => {
  for (const spec of MODELS) {
    test(`${spec.name}: logits [N, 10] for N = 1 and 3`, async () => {
      const { built, bytes } = exported(spec.name);
      const session = await ort.InferenceSession.create(bytes);
      try {
        assert.deepEqual(session.inputNames, ['input']);
        assert.deepEqual(session.outputNames, ['logits']);
        let one: Float32Array | undefined;
        for (const n of [1, 3]) {
          const x = input(n, 3, built.options.inputSize);
          const { logits } = await session.run({ input: x });
          assert.ok(logits);
          assert.deepEqual(logits.dims, [n, 10]);
          const data = logits.data as Float32Array;
          assert.ok(data.every(Number.isFinite), 'finite logits');
          // The first image is the same in both batches: its logits must not depend on the batch size.
          if (n === 1) one = data.slice(0, 10);
          else for (let i = 0; i < 10; i++) assert.ok(Math.abs((data[i] ?? 0) - (one?.[i] ?? 0)) <= 1e-4 * (1 + Math.abs(one?.[i] ?? 0)));
        }
      } finally {
        await session.release();
      }
    });
  }
});

test('metadata, output name, dynamic batch; aux heads are not exported', () => {
  const built = buildModel('googlenet', { ...SMALL, aux: true });
  const params = inferenceParams(built);
  assert.ok(params.length < built.graph.params.length, 'aux parameters are not inference parameters');
  const model = decodeModel(exportInferenceModel(built, initParams(params, 0)));
  const meta = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key, p.value]));
  assert.equal(meta[METADATA.model], 'googlenet');
  assert.deepEqual(JSON.parse(meta[METADATA.options] ?? '{}'), built.options);
  assert.equal(model.opsetImport?.[0]?.version, 18);
  assert.equal(model.opsetImport?.[0]?.domain ?? '', '');
  const out = model.graph?.output ?? [];
  assert.deepEqual(
    out.map((o) => o.name),
    ['logits'],
  );
  assert.equal(out[0]?.type?.tensorType?.shape?.dim?.[0]?.dimParam, 'N');
  const names = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  for (const p of params) assert.ok(names.has(p.name), `${p.value.name} is an initializer`);
  assert.ok(![...names].some((n) => n?.startsWith('loss1') || n?.startsWith('loss2')));
  assert.deepEqual(
    (model.graph?.input ?? []).map((i) => i.name),
    ['input'],
    'no parameter left as a graph input',
  );
});

test('the seed decides the weights', () => {
  const a = exported('nin', 18, 7).bytes;
  assert.deepEqual(exported('nin', 18, 7).bytes, a);
  assert.notDeepEqual(exported('nin', 18, 8).bytes, a);
});

test('missing or short weights are refused', () => {
  const built = buildModel('alexnet', SMALL);
  const weights = initParams(inferenceParams(built), 0);
  weights.delete('fc8.bias');
  assert.throws(() => exportInferenceModel(built, weights), /no weights for parameter fc8\.bias/);
  weights.set('fc8.bias', new Float32Array(3));
  assert.throws(() => exportInferenceModel(built, weights), /fc8\.bias have 3 values/);
});

test('encode → decode → encode is byte-identical (alexnet at width 0.125: a few MB of weights)', () => {
  const { bytes } = exported('alexnet');
  assert.ok(bytes.byteLength > 3e6, `${bytes.byteLength} bytes`);
  const again = encodeModel(decodeModel(bytes));
  assert.equal(again.byteLength, bytes.byteLength);
  assert.ok(Buffer.from(again).equals(Buffer.from(bytes)));
});

describe('checkpoint weights', () => {
  const built = buildModel('zfnet', SMALL);
  const params = inferenceParams(built);
  const weights = initParams(params, 3);
  const tensors = (): Record<string, Tensor> =>
    Object.fromEntries(
      params.map((p) => [p.name, { dtype: 'F32', shape: [...p.value.shape], data: weights.get(p.name) ?? new Float32Array() }]),
    );

  test('tensors named like the parameters become the weights; others are ignored', () => {
    const file = join(dir, 'ok.safetensors');
    saveSafetensors(file, { ...tensors(), 'momentum.conv1.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    const { weights: got, ignored } = checkpointWeights(params, loadSafetensors(file), file);
    assert.deepEqual(ignored, ['momentum.conv1.weight']);
    assert.deepEqual(exportInferenceModel(built, got), exportInferenceModel(built, weights));
  });

  test('flat tensors of the right size fit (the trainer stores flat buffers)', () => {
    const flat = Object.fromEntries(Object.entries(tensors()).map(([k, t]) => [k, { ...t, shape: [t.data.length] }]));
    assert.equal(checkpointWeights(params, { tensors: flat }, 'f').weights.size, params.length);
  });

  test('missing and differently shaped tensors are named in one usage error', () => {
    const t = tensors();
    delete t['fc8.bias'];
    t['conv1.weight'] = { dtype: 'F32', shape: [1, 2], data: new Float32Array(2) };
    assert.throws(
      () => checkpointWeights(params, { tensors: t }, 'run.safetensors'),
      (e: unknown) =>
        e instanceof UsageError &&
        /^run\.safetensors does not fit this model/.test(e.message) &&
        e.message.includes('missing fc8.bias') &&
        e.message.includes('conv1.weight is 1×2, the graph has 12×3×7×7'),
    );
  });
});

test('python3-onnx checker accepts every model exported at opset 17', (t) => {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    t.skip('python3-onnx not installed');
    return;
  }
  const files = MODELS.map((m) => {
    const file = join(dir, `${m.name}.onnx`);
    writeFileSync(file, exported(m.name, 17).bytes);
    return file;
  });
  const script = [
    'import sys, onnx',
    'for f in sys.argv[1:]:',
    '    m = onnx.load(f)',
    '    onnx.checker.check_model(m, full_check=True)',
    '    assert m.opset_import[0].version == 17, f',
    'print("checked", len(sys.argv) - 1)',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script, ...files], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`checked ${MODELS.length}`));
});
