/**
 * Max-pooling gradients as MaxUnpool on the CPU (src/runtime/unpool.ts): for pools whose windows
 * tile the input, the rewritten gradient equals the scatter's, ties included (they go to the first
 * element either way); overlapping pools keep the scatter; nothing the scatter needed is left behind.
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
import { unpoolGradients } from '../../src/runtime/unpool.js';
import { Rng } from '../../src/util/rng.js';

const SHAPE = [2, 3, 8, 8] as const;

function poolModel(kernel: number, stride: number): ModelProto {
  const g = new Graph('pool');
  const x = g.input('x', 'float32', SHAPE);
  // After a ReLU, as in the zoo: many windows hold ties at 0.
  const y = maxPool(relu(x), { kernel: [kernel, kernel], strides: [stride, stride], pads: [0, 0, 0, 0], ceil: false });
  const rng = new Rng(4);
  const r = g.constant(Float32Array.from({ length: y.size }, () => rng.uniform(-1, 1)), y.shape, 'float32');
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

test('a 2×2/2 pool gradient becomes MaxUnpool, equal to the scatter bit for bit, with nothing of the scatter left', async () => {
  const model = poolModel(2, 2);
  const rewritten = unpoolGradients(model);
  assert.ok(ops(model).includes('ScatterElements'));
  const count = (m: ModelProto, op: string) => ops(m).filter((o) => o === op).length;
  assert.equal(count(rewritten, 'ScatterElements'), 0, ops(rewritten).join(' '));
  assert.equal(count(rewritten, 'Expand'), count(model, 'Expand') - 1, 'the zeros the scatter wrote into');
  assert.equal(ops(rewritten).filter((o) => o === 'MaxUnpool').length, 1);
  const read = new Set(rewritten.graph.node.flatMap((n) => n.input));
  assert.deepEqual(rewritten.graph.initializer?.filter((t) => !read.has(t.name)).map((t) => t.name), []);
  const rng = new Rng(6);
  // Quantised values: exact ties inside windows, not only at zero.
  const x = Float32Array.from({ length: SHAPE.reduce((a, b) => a * b, 1) }, () => Math.round(rng.uniform(-2, 3)));
  assert.deepEqual(await run(rewritten, x), await run(model, x));
});

test('an overlapping 3×3/2 pool keeps its scatter', () => {
  const model = poolModel(3, 2);
  assert.equal(unpoolGradients(model), model);
});
