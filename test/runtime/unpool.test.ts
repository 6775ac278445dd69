/**
 * Max-pooling gradients (MaxPoolGrad composites) as MaxUnpool on the CPU (src/runtime/lower/max-unpool.ts):
 * for pools whose windows tile the input, the gradient equals the scatter's that every provider
 * takes, ties included (they go to the first element either way); overlapping pools keep the scatter.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradients } from '../../src/autodiff/grad.js';
import { Graph } from '../../src/graph/graph.js';
import { toModel } from '../../src/graph/serialize.js';
import { encodeModel, type ModelProto } from '../../src/onnx/proto.js';
import { identity, mul, relu } from '../../src/ops/elementwise.js';
import { maxPool } from '../../src/ops/pool.js';
import { reduceSum } from '../../src/ops/shape.js';
import { createSession, tensor } from '../../src/runtime/ort.js';
import { COMPOSITES, DEFAULT_TABLE, lower, TABLES } from '../../src/runtime/lower/index.js';
import { maxUnpool } from '../../src/runtime/lower/max-unpool.js';
import { Rng } from '../../src/util/rng.js';

const SHAPE = [2, 3, 8, 8] as const;

function poolModel(kernel: number, stride: number): ModelProto {
  const g = new Graph('pool');
  const x = g.input('x', 'float32', SHAPE);
  // After a ReLU, as in the zoo: many windows hold ties at 0.
  const y = maxPool(relu(x), { kernel: [kernel, kernel], strides: [stride, stride], pads: [0, 0, 0, 0], ceil: false });
  const rng = new Rng(4);
  const r = g.constant(
    Float32Array.from({ length: y.size }, () => rng.uniform(-1, 1)),
    y.shape,
    'float32',
  );
  const dx = gradients(reduceSum(mul(y, r), [0, 1, 2, 3]), [x]).get(x)!;
  g.output(identity(y), 'y');
  g.output(identity(dx), 'dx');
  return toModel(g, { shapes: true });
}

async function run(model: ModelProto, x: Float32Array): Promise<Float32Array> {
  const s = await createSession(encodeModel(model), { threads: 1 });
  const out = await s.run({ x: tensor('float32', x, SHAPE) });
  await s.release();
  return out['dx']!.data as Float32Array;
}

const ops = (m: ModelProto) => m.graph.node.map((n) => n.opType);

const count = (m: ModelProto, op: string) => ops(m).filter((o) => o === op).length;
const onCpu = (m: ModelProto) => lower(m, [[maxUnpool, ...COMPOSITES]], { block: 0 });

test('the CPU table takes MaxUnpool for tiling pools', () => {
  assert.ok(TABLES.cpu[0]!.includes(maxUnpool));
  assert.ok(!TABLES.cuda.flat().includes(maxUnpool) && !TABLES.webgpu.flat().includes(maxUnpool), 'no MaxUnpool kernel on CUDA or WebGPU');
});

test('a 2×2/2 pool gradient becomes MaxUnpool, equal to the scatter bit for bit', async () => {
  const model = poolModel(2, 2);
  assert.equal(count(model, 'MaxPoolGrad'), 1);
  const scatter = lower(model, DEFAULT_TABLE, { block: 0 });
  const unpool = onCpu(model);
  assert.equal(count(scatter, 'ScatterElements'), 1);
  assert.equal(count(unpool, 'ScatterElements'), 0, ops(unpool).join(' '));
  assert.equal(count(unpool, 'MaxUnpool'), 1);
  const rng = new Rng(6);
  // Quantised values: exact ties inside windows, not only at zero.
  const x = Float32Array.from({ length: SHAPE.reduce((a, b) => a * b, 1) }, () => Math.round(rng.uniform(-2, 3)));
  assert.deepEqual(await run(unpool, x), await run(scatter, x));
});

test('an overlapping 3×3/2 pool keeps its scatter', () => {
  const unpool = onCpu(poolModel(3, 2));
  assert.equal(count(unpool, 'MaxUnpool'), 0);
  assert.equal(count(unpool, 'ScatterElements'), 1);
});
