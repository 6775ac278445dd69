/**
 * The blocked-layout (NCHWc) rewrite of Convs with run-time weights (src/runtime/lower/nchwc-conv.ts): each
 * geometry it takes gives the forward output and all three gradients (the stride-1 input gradient
 * is itself a Conv, rewritten too) equal to the standard Conv's to float32 rounding; what does not
 * fit is left alone; and a training session on the CPU runs the rewritten graph with the same
 * losses and parameters as without it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradients } from '../../src/autodiff/grad.js';
import { Graph } from '../../src/graph/graph.js';
import { toModel } from '../../src/graph/serialize.js';
import { encodeModel, type GraphProto, type ModelProto } from '../../src/onnx/proto.js';
import { conv, type ConvAttrs } from '../../src/ops/conv.js';
import { identity, mul } from '../../src/ops/elementwise.js';
import { reduceSum } from '../../src/ops/shape.js';
import { COMPOSITES, DEFAULT_TABLE, TABLES, lower, NCHWC_DOMAIN, nchwcBlockSize, nchwcConvs } from '../../src/runtime/lower/index.js';
import { nchwcConv } from '../../src/runtime/lower/nchwc-conv.js';
import { createSession, tensor } from '../../src/runtime/ort.js';
import { buildTrainGraph } from '../../src/train/graphs.js';
import { loopModel } from '../../src/train/loop.js';
import { TrainingSession, type StepBatch, type TrainingConfig } from '../../src/train/training-session.js';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import { Rng } from '../../src/util/rng.js';

const block = await nchwcBlockSize();
const skip = block > 1 ? false : "this CPU's ONNX Runtime has no NCHWc kernels (block size 1)";

function blockedConvs(model: ModelProto): number {
  const count = (g: GraphProto): number =>
    g.node.reduce(
      (n, node) =>
        n +
        (node.opType === 'Conv' && node.domain === NCHWC_DOMAIN ? 1 : 0) +
        (node.attribute ?? []).reduce((m, a) => m + (a.g ? count(a.g) : 0), 0),
      0,
    );
  return count(model.graph);
}

interface Case {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  a: Partial<ConvAttrs>;
  /** Convs the rewrite takes: the forward one, and the gradients' where they are Convs that fit. */
  blocked: number;
  /** The input gradient's mirrored weights are mirrored after reordering (the weights' Slice is gone). */
  mirrorFolded?: boolean;
}

const B = Math.max(block, 4);
const CASES: Case[] = [
  { name: 'one input channel (the plain NCHW path), 3×3 pad 1', x: [2, 1, 12, 12], w: [B, 1, 3, 3], a: { pads: [1, 1, 1, 1] }, blocked: 1 },
  // Its weight gradient is a Conv too: the batch (2) as channels, dy as a 6×6 kernel dilated by 4.
  {
    name: 'RGB 11×11 stride 4 pad 2 (AlexNet conv1)',
    x: [2, 3, 27, 27],
    w: [2 * B, 3, 11, 11],
    a: { strides: [4, 4], pads: [2, 2, 2, 2] },
    blocked: 2,
  },
  {
    name: 'blocked 3×3 pad 1, input gradient blocked too',
    x: [2, B, 8, 8],
    w: [2 * B, B, 3, 3],
    a: { pads: [1, 1, 1, 1] },
    blocked: 2,
    mirrorFolded: true,
  },
  { name: 'blocked 1×1', x: [2, 2 * B, 5, 5], w: [B, 2 * B, 1, 1], a: {}, blocked: 2 },
  {
    name: 'blocked 3×3 stride 2, asymmetric pads',
    x: [2, B, 9, 9],
    w: [B, B, 3, 3],
    a: { strides: [2, 2], pads: [0, 1, 1, 0] },
    blocked: 1,
  },
  { name: 'grouped 3×3 (two towers)', x: [2, 2 * B, 6, 6], w: [2 * B, B, 3, 3], a: { pads: [1, 1, 1, 1], group: 2 }, blocked: 2 },
  { name: 'dilation 2', x: [2, B, 9, 9], w: [B, B, 3, 3], a: { pads: [2, 2, 2, 2], dilations: [2, 2] }, blocked: 1 },
  { name: 'channels off the block (left alone)', x: [2, B + 4, 6, 6], w: [B, B + 4, 3, 3], a: { pads: [1, 1, 1, 1] }, blocked: 0 },
];

/** y = conv(x, w, b) and the gradients of Σ y·r for x, w and b, with shapes declared. */
function convModel(c: Case): ModelProto {
  const attrs: ConvAttrs = { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, ...c.a };
  const g = new Graph('conv');
  const x = g.input('x', 'float32', c.x);
  const w = g.input('w', 'float32', c.w);
  const b = g.input('b', 'float32', [c.w[0]]);
  const y = conv(x, w, b, attrs);
  const rng = new Rng(3);
  const r = g.constant(
    Float32Array.from({ length: y.size }, () => rng.uniform(-1, 1)),
    y.shape,
    'float32',
  );
  const loss = reduceSum(mul(y, r), [0, 1, 2, 3]);
  const grads = gradients(loss, [x, w, b]);
  g.output(identity(y), 'y');
  for (const [name, v] of [
    ['dx', x],
    ['dw', w],
    ['db', b],
  ] as const)
    g.output(identity(grads.get(v)!), name);
  return toModel(g, { shapes: true });
}

async function run(
  model: ModelProto,
  feeds: Record<string, Float32Array>,
  shapes: Record<string, readonly number[]>,
): Promise<Record<string, Float32Array>> {
  const s = await createSession(encodeModel(model), { threads: 1 });
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, tensor('float32', v, shapes[k]!)])));
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
}

for (const c of CASES) {
  test(`NCHWc rewrite: ${c.name} — output and gradients equal the standard Conv's`, { skip }, async () => {
    // The gradients as any provider takes them, against the CPU's lowering at its block.
    const model = lower(convModel(c), DEFAULT_TABLE, { block: 0 });
    const rewritten = lower(convModel(c), [COMPOSITES, [nchwcConv]], { block });
    assert.equal(blockedConvs(rewritten), c.blocked, 'blocked Convs in the rewritten graph');
    if (c.mirrorFolded) {
      const mirrors = (m: ModelProto) => m.graph.node.filter((n) => n.opType === 'Slice' && n.input[0] === 'w').length;
      assert.equal(mirrors(model), 1);
      assert.equal(mirrors(rewritten), 0, 'the Slice that mirrors the weights is still there');
      assert.equal(rewritten.graph.node.filter((n) => n.name?.endsWith('/w_flip')).length, 1);
      const read = new Set(rewritten.graph.node.flatMap((n) => n.input));
      assert.deepEqual(
        rewritten.graph.initializer?.filter((t) => !read.has(t.name)).map((t) => t.name),
        [],
        'unread initializers',
      );
    }
    assert.equal(
      rewritten.opsetImport.some((o) => o.domain === NCHWC_DOMAIN),
      c.blocked > 0,
      'the NCHWc opset import',
    );
    const rng = new Rng(9);
    const feeds = {
      x: Float32Array.from({ length: c.x.reduce((p, d) => p * d, 1) }, () => rng.uniform(-1, 1)),
      w: Float32Array.from({ length: c.w.reduce((p, d) => p * d, 1) }, () => rng.uniform(-1, 1)),
      b: Float32Array.from({ length: c.w[0] }, () => rng.uniform(-1, 1)),
    };
    const shapes = { x: c.x, w: c.w, b: [c.w[0]] };
    const ref = await run(model, feeds, shapes);
    const got = await run(rewritten, feeds, shapes);
    for (const k of ['y', 'dx', 'dw', 'db']) {
      const a = ref[k]!;
      const v = got[k]!;
      assert.equal(v.length, a.length, k);
      let scale = 0;
      let err = 0;
      for (let i = 0; i < a.length; i++) {
        scale = Math.max(scale, Math.abs(a[i]!));
        err = Math.max(err, Math.abs(a[i]! - v[i]!));
      }
      assert.ok(err <= 1e-5 * Math.max(scale, 1), `${k}: max difference ${err} against a largest value of ${scale}`);
    }
  });
}

test('NCHWc rewrite leaves weights given as initializers, undeclared shapes and block size 1 alone', { skip }, async () => {
  const g = new Graph('init');
  const x = g.input('x', 'float32', [1, B, 4, 4]);
  const w = g.param('w', [B, B, 3, 3], { kind: 'constant', value: 0.1 });
  g.output(conv(x, w, undefined, { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }), 'y');
  const withWeights = toModel(g, { shapes: true, weights: new Map([['w', new Float32Array(B * B * 9).fill(0.1)]]) });
  assert.equal(nchwcConvs(withWeights, block), withWeights);
  const fed = toModel(g, { paramsAsInputs: true, shapes: true });
  assert.equal(blockedConvs(nchwcConvs(fed, block)), 1);
  assert.equal(nchwcConvs(fed, 1), fed);
  // x's shape comes from the graph inputs; an intermediate value without value_info is not guessed at.
  const g2 = new Graph('undeclared');
  const x2 = g2.input('x', 'float32', [1, B, 4, 4]);
  const w2 = g2.input('w', 'float32', [B, B, 3, 3]);
  g2.output(conv(identity(x2), w2, undefined, { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }), 'y');
  const bare = toModel(g2);
  assert.equal(nchwcConvs(bare, block), bare);
});

test('ILSVRC_NCHWC=0 turns the rewrite off', async () => {
  const before = process.env['ILSVRC_NCHWC'];
  process.env['ILSVRC_NCHWC'] = '0';
  try {
    assert.equal(await nchwcBlockSize(), 0);
  } finally {
    if (before === undefined) delete process.env['ILSVRC_NCHWC'];
    else process.env['ILSVRC_NCHWC'] = before;
  }
});

function trainConfig(): TrainingConfig {
  return {
    model: 'vgg-a',
    // Width 1/4 at 32 px: 16 to 128 channels, every Conv past the first a multiple of 8 and of 16.
    modelOptions: { width: 1 / 4, classes: 10, inputSize: 32, channels: 1, init: 'kaiming' },
    batch: 16,
    optimizer: { ...DEFAULT_OPTIMIZER },
    labelSmoothing: 0,
    frozen: [],
    seed: 4,
    session: { threads: 2 },
  };
}

test('a training session on the CPU runs its Convs blocked, with the losses and parameters of the standard Convs', { skip }, async () => {
  const cfg = trainConfig();
  // VGG-A: 8 forward Convs and 7 input gradients (the first layer has none), inside the Loop body;
  // lowered for the blocked kernels, the weight gradients of the six layers on maps of 8×8 and less
  // are Convs over the batch (16, a multiple of the block) that the rewrite takes too.
  const loop = loopModel(buildTrainGraph({ ...cfg, frozen: new Set() }, 'step'));
  assert.equal(blockedConvs(nchwcConvs(lower(loop, DEFAULT_TABLE, { block: 0 }), block)), 15, 'the weight gradients lowered for no block');
  assert.equal(blockedConvs(lower(loop, TABLES.cpu, { block })), 21);

  const rng = new Rng(2);
  const data: StepBatch[] = Array.from({ length: 3 }, () => ({
    x: Float32Array.from({ length: 16 * 32 * 32 }, () => rng.normal()),
    labels: Int32Array.from({ length: 16 }, () => rng.int(10)),
  }));
  const train = async (): Promise<{ losses: number[]; params: Map<string, Float32Array> }> => {
    const s = await TrainingSession.create(cfg);
    const losses = (await s.runSteps(data, [0.01, 0.01, 0.01])).map((m) => m.loss);
    const params = new Map([...s.params].map(([k, v]) => [k, Float32Array.from(v)]));
    await s.release();
    return { losses, params };
  };
  const blocked = await train();
  const before = process.env['ILSVRC_NCHWC'];
  process.env['ILSVRC_NCHWC'] = '0';
  let plain: Awaited<ReturnType<typeof train>>;
  try {
    plain = await train();
  } finally {
    if (before === undefined) delete process.env['ILSVRC_NCHWC'];
    else process.env['ILSVRC_NCHWC'] = before;
  }
  blocked.losses.forEach((l, i) =>
    assert.ok(Math.abs(l - plain.losses[i]!) <= 1e-4 * Math.abs(plain.losses[i]!), `step ${i}: loss ${l} vs ${plain.losses[i]}`),
  );
  for (const [k, v] of plain.params) {
    const w = blocked.params.get(k)!;
    let scale = 0;
    let err = 0;
    for (let i = 0; i < v.length; i++) {
      scale = Math.max(scale, Math.abs(v[i]!));
      err = Math.max(err, Math.abs(v[i]! - w[i]!));
    }
    assert.ok(err <= 1e-4 * scale, `${k}: parameters differ by ${err} (largest ${scale})`);
  }
});
