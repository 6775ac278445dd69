/**
 * The providers' lowerings (src/runtime/lower/): each rule applies where it should and leaves other
 * graphs as they are; every form a composite is written in computes what a direct reference
 * computes; no composite reaches ONNX Runtime or an exported model.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { initParams } from '../../src/graph/init.js';
import { toModel } from '../../src/graph/serialize.js';
import { decodeModel, encodeModel, type GraphProto, type ModelProto } from '../../src/onnx/proto.js';
import { convInputGrad, convOutSize, convWeightGrad, type ConvAttrs } from '../../src/ops/conv.js';
import { identity, relu } from '../../src/ops/elementwise.js';
import { MaxPool, maxPool, MaxPoolGrad } from '../../src/ops/pool.js';
import { COMPOSITE_DOMAIN, composites, DEFAULT_TABLE, lower, runStage, TABLES, type Rule } from '../../src/runtime/lower/index.js';
import { createSession, tensor } from '../../src/runtime/ort.js';
import { buildModel } from '../../src/zoo/index.js';
import { exportInferenceModel, inferenceParams } from '../../src/zoo/export.js';
import { Rng } from '../../src/util/rng.js';

const RULES: Rule[] = [...new Set(Object.values(TABLES).flatMap((t) => t.flat()))];

const ops = (m: ModelProto): string[] => {
  const out: string[] = [];
  const visit = (g: GraphProto) => g.node.forEach((n) => (out.push(n.opType), (n.attribute ?? []).forEach((a) => a.g && visit(a.g))));
  visit(m.graph);
  return out;
};
const count = (m: ModelProto, op: string) => ops(m).filter((o) => o === op).length;

function attrsOf(s: number, p: readonly [number, number, number, number], group = 1, d = 1): ConvAttrs {
  return { strides: [s, s], pads: p, dilations: [d, d], group };
}

/** dW = ConvWeightGrad(x, dy) as a model of inputs x and dy. */
function weightGradModel(xShape: number[], dyShape: number[], wShape: number[], a: ConvAttrs): ModelProto {
  const g = new Graph('dw');
  // dy through an Identity: an intermediate value whose shape the graph does not declare, as in the
  // gradient checks, so a block size without NCHWc kernels (2) picks the form alone.
  g.output(convWeightGrad(g.input('x', 'float32', xShape), identity(g.input('dy', 'float32', dyShape)), wShape, a), 'dw');
  return toModel(g);
}

/** dx = ConvInputGrad(dy, w) as a model of inputs dy and w. */
function inputGradModel(xShape: number[], dyShape: number[], wShape: number[], a: ConvAttrs): ModelProto {
  const g = new Graph('dx');
  g.output(convInputGrad(g.input('dy', 'float32', dyShape), g.input('w', 'float32', wShape), xShape, a), 'dx');
  return toModel(g);
}

const random = (n: number, rng: Rng) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

async function run(m: ModelProto, feeds: Record<string, [Float32Array, number[]]>): Promise<Float32Array> {
  const s = await createSession(encodeModel(m), { threads: 1 });
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, [d, sh]]) => [k, tensor('float32', d, sh)])));
  await s.release();
  return Object.values(out)[0]!.data as Float32Array;
}

/**
 * The Conv's gradients by their definition, in float64:
 * y[n, m, i, j] = Σ w[m, c, p, q]·x[n, g·cg + c, i·s + p·d − pt, j·s + q·d − pl], so dW and dx are
 * the same sum with dy in y's place.
 */
function reference(
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
  xs: number[],
  ws: number[],
  ys: number[],
  a: ConvAttrs,
): { dw: Float64Array; dx: Float64Array } {
  const [n, c, h, wd] = xs as [number, number, number, number];
  const [m, cg, kh, kw] = ws as [number, number, number, number];
  const [, , ho, wo] = ys as [number, number, number, number];
  const mg = m / a.group;
  const dw = new Float64Array(size(ws));
  const dx = new Float64Array(size(xs));
  for (let b = 0; b < n; b++)
    for (let o = 0; o < m; o++) {
      const grp = Math.floor(o / mg);
      for (let i = 0; i < ho; i++)
        for (let j = 0; j < wo; j++) {
          const g = dy[((b * m + o) * ho + i) * wo + j]!;
          for (let ci = 0; ci < cg; ci++)
            for (let p = 0; p < kh; p++)
              for (let q = 0; q < kw; q++) {
                const r = i * a.strides[0] + p * a.dilations[0] - a.pads[0];
                const s = j * a.strides[1] + q * a.dilations[1] - a.pads[1];
                if (r < 0 || r >= h || s < 0 || s >= wd) continue;
                const xi = ((b * c + grp * cg + ci) * h + r) * wd + s;
                const wi = ((o * cg + ci) * kh + p) * kw + q;
                dw[wi]! += g * x[xi]!;
                dx[xi]! += g * w[wi]!;
              }
        }
    }
  return { dw, dx };
}

function close(got: Float32Array, want: Float64Array, what: string): void {
  assert.equal(got.length, want.length, what);
  let scale = 1;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-4 * scale, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

interface Geometry {
  name: string;
  x: number[];
  w: number[];
  a: ConvAttrs;
  /** The weight gradient's form at block 0 and at block 2: its telltale op and how many. */
  form: [string, number];
  blocked?: [string, number];
}

const GEOMETRIES: Geometry[] = [
  { name: '7×7 stride 2: one Conv over the batch', x: [2, 2, 11, 11], w: [3, 2, 7, 7], a: attrsOf(2, [3, 3, 3, 3]), form: ['Conv', 1] },
  {
    name: '5×5 grouped: one MatMul per kernel offset',
    ...{ x: [2, 4, 6, 6], w: [4, 2, 5, 5], a: attrsOf(1, [2, 2, 2, 2], 2), form: ['MatMul', 25] },
  },
  {
    name: '3×3 on a small map, many filters: im2col folded over the batch',
    ...{ x: [2, 3, 3, 3], w: [16, 3, 3, 3], a: attrsOf(1, [1, 1, 1, 1]), form: ['ReduceSum', 0], blocked: ['Conv', 1] },
  },
  {
    name: '3×3 stride 2, uneven pads: im2col rows summed over the batch',
    ...{ x: [2, 3, 7, 7], w: [4, 3, 3, 3], a: attrsOf(2, [0, 1, 1, 0]), form: ['ReduceSum', 1], blocked: ['Conv', 1] },
  },
  {
    name: '3×3 dilation 2: im2col rows',
    ...{ x: [2, 2, 9, 9], w: [4, 2, 3, 3], a: attrsOf(1, [2, 2, 2, 2], 1, 2), form: ['ReduceSum', 1], blocked: ['ReduceSum', 1] },
  },
  { name: '1×1: the input itself', x: [2, 3, 4, 4], w: [5, 3, 1, 1], a: attrsOf(1, [0, 0, 0, 0]), form: ['Slice', 0] },
];

for (const c of GEOMETRIES) {
  test(`ConvWeightGrad and ConvInputGrad, ${c.name}: every form equals the gradient by definition`, async () => {
    const side = (i: 0 | 1) => convOutSize(c.x[2 + i]!, c.w[2 + i]!, c.a.strides[i], c.a.dilations[i], c.a.pads[i], c.a.pads[i + 2]!);
    const ys = [c.x[0]!, c.w[0]!, side(0), side(1)];
    const rng = new Rng(5);
    const x = random(size(c.x), rng);
    const w = random(size(c.w), rng);
    const dy = random(size(ys), rng);
    const want = reference(x, w, dy, c.x, c.w, ys, c.a);
    for (const block of [0, 2]) {
      const dwModel = lower(weightGradModel(c.x, ys, c.w, c.a), DEFAULT_TABLE, { block });
      const [op, n] = block === 2 && c.blocked ? c.blocked : c.form;
      assert.equal(count(dwModel, op), n, `block ${block}: ${ops(dwModel).join(' ')}`);
      close(await run(dwModel, { x: [x, c.x], dy: [dy, ys] }), want.dw, `dW at block ${block}`);
    }
    const dxModel = lower(inputGradModel(c.x, ys, c.w, c.a), DEFAULT_TABLE, { block: 0 });
    const unit = c.a.strides[0] === 1 && c.a.dilations[0] === 1;
    assert.equal(count(dxModel, unit ? 'Conv' : 'ConvTranspose'), 1, ops(dxModel).join(' '));
    close(await run(dxModel, { dy: [dy, ys], w: [w, c.w] }), want.dx, 'dx');
  });
}

test('MaxPoolGrad as the scatter, and as MaxUnpool for tiling pools on the CPU: dy lands on the first maximum of each window', async () => {
  for (const [k, s] of [
    [2, 2],
    [3, 2],
  ] as const) {
    const shape = [2, 3, 8, 8];
    const g = new Graph('pool');
    const xv = g.input('x', 'float32', shape);
    const [, idx] = g.add(MaxPool, [relu(xv)], { kernel: [k, k], strides: [s, s], pads: [0, 0, 0, 0], ceil: false });
    const ysh = [...idx!.shape];
    const dyv = g.input('dy', 'float32', ysh);
    const window = { kernel: [k, k], strides: [s, s], pads: [0, 0, 0, 0], ceil: false } as const;
    g.output(g.add1(MaxPoolGrad, [dyv, idx!], { ...window, xShape: shape, yShape: ysh, dtype: 'float32' }), 'dx');
    const model = toModel(g);
    const rng = new Rng(3);
    // Quantised values: ties inside windows, which go to the first element.
    const x = Float32Array.from({ length: size(shape) }, () => Math.round(rng.uniform(-2, 3)));
    const dy = random(size(ysh), rng);
    const want = new Float64Array(size(shape));
    const [n, c, h, w] = shape as [number, number, number, number];
    const [, , ho, wo] = ysh as [number, number, number, number];
    for (let b = 0; b < n * c; b++)
      for (let i = 0; i < ho; i++)
        for (let j = 0; j < wo; j++) {
          let best = -1;
          for (let p = 0; p < k; p++)
            for (let q = 0; q < k; q++) {
              const at = b * h * w + (i * s + p) * w + (j * s + q);
              if (best < 0 || Math.max(0, x[at]!) > Math.max(0, x[best]!)) best = at;
            }
          want[best]! += dy[(b * ho + i) * wo + j]!;
        }
    for (const table of [DEFAULT_TABLE, TABLES.cpu]) {
      const lowered = lower(model, table, { block: 0 });
      assert.equal(count(lowered, 'MaxUnpool'), table === TABLES.cpu && k === s ? 1 : 0, ops(lowered).join(' '));
      close(await run(lowered, { x: [x, shape], dy: [dy, ysh] }), want, `${k}×${k}/${s}`);
    }
  }
});

test('each rule leaves a graph without its pattern as it is (the same object)', () => {
  const g = new Graph('plain');
  const x = g.input('x', 'float32', [1, 3, 4, 4]);
  g.output(identity(maxPool(relu(x), { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceil: false })), 'y');
  const model = toModel(g, { shapes: true });
  for (const rule of RULES) assert.equal(runStage(model, [rule], { block: 16 }), model, rule.name);
  for (const table of Object.values(TABLES)) assert.equal(lower(model, table, { block: 16 }), model);
});

test('each composite rule takes its own composite only, and every provider table writes out every composite', () => {
  const composite = (op: string) => ({ opType: op, domain: COMPOSITE_DOMAIN, input: [], output: ['y'] });
  const names = ['ConvWeightGrad', 'ConvInputGrad', 'MaxPoolGrad'];
  for (const rule of RULES) {
    for (const op of names) {
      // The same op names in ONNX's own domain are someone else's ops.
      assert.equal(rule.match({ opType: op, input: [], output: ['y'] }), false, `${rule.name} takes ${op} of the default domain`);
    }
  }
  for (const [provider, table] of Object.entries(TABLES)) {
    for (const op of names)
      assert.ok(
        table.flat().some((r) => r.match(composite(op))),
        `${provider} has no lowering for ${op}`,
      );
  }
});

test('a composite without a lowering is an error naming it, never a model handed to ONNX Runtime', () => {
  const model = weightGradModel([2, 3, 5, 5], [2, 4, 3, 3], [4, 3, 3, 3], attrsOf(1, [0, 0, 0, 0]));
  assert.deepEqual(composites(model), ['ConvWeightGrad']);
  assert.throws(() => lower(model, [[]], { block: 0 }), /ConvWeightGrad \(ai\.ilsvrc\) after lowering/);
  assert.deepEqual(composites(lower(model, DEFAULT_TABLE, { block: 0 })), []);
});

test('exported ONNX holds only standard ops: no private-domain node', () => {
  for (const name of ['alexnet', 'vgg-a', 'googlenet', 'nin']) {
    const built = buildModel(name, { width: 0.125, classes: 10 });
    const model = decodeModel(exportInferenceModel(built, initParams(inferenceParams(built), 1)));
    const domains = new Set(model.graph.node.map((n) => n.domain ?? ''));
    assert.deepEqual([...domains], [''], name);
    assert.deepEqual(
      model.opsetImport.map((o) => o.domain ?? ''),
      [''],
      name,
    );
  }
});
