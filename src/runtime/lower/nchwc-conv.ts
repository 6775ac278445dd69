/**
 * Convolutions whose weights are fed at run time, through ONNX Runtime's blocked-layout (NCHWc)
 * kernels on the CPU.
 *
 * ORT rewrites a Conv into its NCHWc form (channels in blocks of 8 with AVX2, 16 with AVX-512) only
 * when the weights are initializers: it reorders them once, when the session is made. A training
 * graph feeds its weights each run, so every Conv in it ran MLAS's plain im2col + GEMM. Here each
 * such Conv becomes the same kernels ORT would have used, written out: the weights reordered in the
 * graph (Reshape, Transpose, Reshape: OIHW to OIHWBiBo, or OIHWBo for an input of fewer channels
 * than a block), the input reordered (ReorderInput), the blocked Conv, and the output reordered back
 * (ReorderOutput), all in the com.microsoft.nchwc domain that ORT's CPU provider registers. Measured
 * on 2 cores of a Xeon with AVX-512, batch 128, 3×3 convolutions: 16→32 channels at 32×32 and
 * 64→128 at 8×8 went from 34.4 and 22.6 ms to 32.9 and 11.9 ms (weights as inputs vs. the blocked
 * kernels); scripts/profile-step and scripts/bench-train give whole steps.
 *
 * The gradients' Convs are written blocked by their lowerings (emitConv), which know where their
 * weights come from (a transposed, mirrored copy of the layer's); the rule here takes the other
 * Convs. Both need the shapes of the Conv's input and weights, which the training graphs declare
 * (SerializeOptions.shapes); a Conv whose shapes are not declared, whose weights are initializers,
 * or whose channels do not fit the block is left as it is. ILSVRC_NCHWC=0 turns them off.
 */
import {
  attribute,
  AttributeType,
  encodeModel,
  stringAttribute,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
} from '../../onnx/proto.js';
import { BLOCKED_MAX_KERNEL } from '../../graph/graph.js';
import { constInts, type GraphScope } from '../graph-rewrite.js';
import { createSession, tensor } from '../ort.js';
import { isOp, runStage, type Rule } from './rule.js';
import type { ConvGeometry, Emitter, Val } from './emit.js';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

function probeModel(): ModelProto {
  const vi = (name: string, c: number | string) => ({
    name,
    type: {
      tensorType: {
        elemType: 1,
        shape: { dim: [{ dimValue: 1 }, typeof c === 'number' ? { dimValue: c } : { dimParam: c }, { dimValue: 1 }, { dimValue: 1 }] },
      },
    },
  });
  return {
    irVersion: 8,
    opsetImport: [
      { domain: '', version: 18 },
      { domain: NCHWC_DOMAIN, version: 1 },
    ],
    producerName: 'ilsvrc',
    graph: {
      name: 'nchwc_probe',
      node: [{ opType: 'ReorderInput', domain: NCHWC_DOMAIN, name: 'probe', input: ['x'], output: ['y'] }],
      input: [vi('x', 4)],
      output: [vi('y', 'C')],
    },
  };
}

let blockSize: Promise<number> | undefined;

/**
 * The CPU's NCHWc block (the channel count ReorderInput pads 4 channels to), or 0 where the
 * kernels are missing or ILSVRC_NCHWC=0. Asked of ORT once per process.
 */
export function nchwcBlockSize(): Promise<number> {
  if (process.env['ILSVRC_NCHWC'] === '0') return Promise.resolve(0);
  blockSize ??= (async () => {
    try {
      const s = await createSession(encodeModel(probeModel()), { threads: 1 });
      try {
        const y = (await s.run({ x: tensor('float32', new Float32Array(4), [1, 4, 1, 1]) }))['y'];
        const b = Number(y?.dims[1] ?? 0);
        return b > 1 && (b & (b - 1)) === 0 ? b : 0;
      } finally {
        await s.release();
      }
    } catch {
      return 0;
    }
  })();
  return blockSize;
}

/**
 * Where a Conv's weights come from: `v` itself, or `v` mirrored over its kernel axes (`mirror`,
 * input gradients) and then transposed by `perm` (input gradients, and weight gradients as a Conv
 * over the batch). A lowering that makes such weights says so, and the blocked form reorders `v`
 * once instead of the transposed copy.
 */
interface WeightSource {
  v: string;
  vShape: readonly number[];
  perm?: readonly number[];
  mirror?: readonly number[];
}

/** The weights' layout the blocked kernels take for a Conv of these shapes, or undefined when they take none. */
function blockedFit(xShape: readonly number[], wShape: readonly number[], group: number, block: number): { inBlocks: boolean } | undefined {
  const known = (s: readonly number[]) => s.length === 4 && s.every((d) => d > 0);
  if (block <= 1 || !known(xShape) || !known(wShape)) return undefined;
  const [o, ig, kh, kw] = wShape as [number, number, number, number];
  const c = xShape[1]!;
  if (kh > BLOCKED_MAX_KERNEL || kw > BLOCKED_MAX_KERNEL || ig * group !== c || o % group !== 0) return undefined;
  // Input in blocks (OIHWBiBo weights), or a plain NCHW input of fewer channels than a block (OIHWBo).
  const inBlocks = ig % block === 0 && (o / group) % block === 0;
  const plain = group === 1 && c < block && o % block === 0;
  return inBlocks || plain ? { inBlocks } : undefined;
}

/**
 * The nodes that compute the Conv y = Conv(x, w, b) through the blocked kernels: the weights
 * reordered (blockedWeights), the input reordered where it has blocks of channels, the blocked
 * Conv, and its output reordered back. `attrs`: the Conv's strides, pads, dilations and group.
 */
function blockedConvNodes(
  y: string,
  x: string,
  w: WeightSource,
  wShape: readonly [number, number, number, number],
  b: string | undefined,
  attrs: AttributeProto[],
  inBlocks: boolean,
  block: number,
): NodeProto[] {
  const base = `${y}/nchwc`;
  const nodes = blockedWeights(w, wShape, inBlocks, base, block);
  let xin = x;
  if (inBlocks) {
    xin = `${base}/x`;
    nodes.push({ opType: 'ReorderInput', domain: NCHWC_DOMAIN, name: xin, input: [x], output: [xin] });
  }
  nodes.push(
    {
      opType: 'Conv',
      domain: NCHWC_DOMAIN,
      name: `${base}/conv`,
      input: b ? [xin, `${base}/w`, b] : [xin, `${base}/w`],
      output: [`${base}/y`],
      attribute: attrs,
    },
    {
      opType: 'ReorderOutput',
      domain: NCHWC_DOMAIN,
      name: `${base}/y_out`,
      input: [`${base}/y`],
      output: [y],
      attribute: [{ name: 'channels', type: AttributeType.INT, i: wShape[0] }],
    },
  );
  return nodes;
}

/** A standard Conv `n` whose weights are a run-time value, through the blocked kernels, or undefined when it does not fit. */
function blocked(n: NodeProto, scope: GraphScope, block: number): NodeProto[] | undefined {
  const [x, w, b] = n.input;
  const y = n.output[0];
  if (!x || !w || !y || scope.isInitializer(w)) return undefined;
  const xs = scope.shape(x);
  const ws = scope.shape(w);
  if (!xs || !ws) return undefined;
  if (stringAttribute(n, 'auto_pad') && stringAttribute(n, 'auto_pad') !== 'NOTSET') return undefined;
  const fit = blockedFit(xs, ws, attribute(n, 'group')?.i ?? 1, block);
  if (!fit) return undefined;
  const attrs = (n.attribute ?? []).filter((a) => ['strides', 'pads', 'dilations', 'group', 'kernel_shape'].includes(a.name));
  return blockedConvNodes(y, x, { v: w, vShape: ws }, ws as [number, number, number, number], b, attrs, fit.inBlocks, block);
}

function transposeNode(name: string, input: string, perm: readonly number[]): NodeProto {
  return {
    opType: 'Transpose',
    name,
    input: [input],
    output: [name],
    attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [...perm] }],
  };
}

function reshapeNode(name: string, input: string, dims: readonly number[]): NodeProto[] {
  return [constInts(`${name}/dims`, dims), { opType: 'Reshape', name, input: [input, `${name}/dims`], output: [name] }];
}

/** The blocked weights `${base}/w_blocks` mirrored over the kernel axes `mirror` (of the OIHW weights), whose blocks stay whole. */
function mirrorBlocks(
  base: string,
  mirror: readonly number[],
  [o, ig, kh, kw]: readonly [number, number, number, number],
  block: number,
): NodeProto[] {
  const out = `${base}/w`;
  const axes = mirror.map((a) => a - 1);
  const flip = `${base}/w_flip`;
  return [
    ...reshapeNode(`${base}/w_tiles`, `${base}/w_blocks`, [(o / block) * (ig / block), kh, kw, block * block]),
    constInts(
      `${flip}/starts`,
      axes.map(() => -1),
    ),
    constInts(
      `${flip}/ends`,
      axes.map((a) => -[kh, kw][a - 1]! - 1),
    ),
    constInts(`${flip}/axes`, axes),
    constInts(
      `${flip}/steps`,
      axes.map(() => -1),
    ),
    {
      opType: 'Slice',
      name: flip,
      input: [`${base}/w_tiles`, `${flip}/starts`, `${flip}/ends`, `${flip}/axes`, `${flip}/steps`],
      output: [flip],
    },
    ...reshapeNode(out, flip, [o, ig, kh, kw]),
  ];
}

/**
 * Nodes that turn the Conv weight `w` (shape [o, ig, kh, kw]) into the blocked kernels' layout, the
 * last one's output named `${base}/w`. Fast forms, from MLAS's own ReorderInput and a Transpose that
 * moves whole blocks (1024×384×3×3 weights on 2 cores: 9–13 ms where one six-axis Transpose took
 * 25–34 ms):
 * - blocked input, weights as they are: ReorderInput gives [O][I/B][kh·kw][Bi]; moving the
 *   output-channel block innermost is one three-axis Transpose;
 * - blocked input, weights Transpose(V, [1, 0, 2, 3]) (input gradients, and weight gradients
 *   as a Conv over the batch): ReorderInput of V, then one Transpose of block rows; where V is
 *   mirrored over the kernel axes (input gradients), the mirror is taken on the reordered weights,
 *   whose blocks stay whole;
 * - an input of fewer channels than a block: the three-axis Transpose alone;
 * - otherwise one Transpose of the weights split into blocks.
 */
function blockedWeights(
  src: WeightSource,
  [o, ig, kh, kw]: readonly [number, number, number, number],
  inBlocks: boolean,
  base: string,
  block: number,
): NodeProto[] {
  const out = `${base}/w`;
  const kk = kh * kw;
  const p = src.perm;
  const v = src.v;
  if (src.mirror && !(inBlocks && p?.join() === '1,0,2,3')) {
    throw new Error(`${base}: mirrored weights are read whole only for blocked inputs`);
  }

  if (!p) {
    const rows = inBlocks ? `${base}/w_rows` : v;
    return [
      ...(inBlocks ? [{ opType: 'ReorderInput', domain: NCHWC_DOMAIN, name: rows, input: [v], output: [rows] }] : []),
      ...reshapeNode(`${base}/w_split`, rows, [o / block, block, ig * kk]),
      transposeNode(`${base}/w_blocks`, `${base}/w_split`, [0, 2, 1]),
      ...reshapeNode(out, `${base}/w_blocks`, [o, ig, kh, kw]),
    ];
  }
  if (inBlocks && p.join() === '1,0,2,3') {
    // V is [ig, o, kh, kw], mirrored or not: the mirror is taken after the reorder.
    const mirror = src.mirror;
    const nodes: NodeProto[] = [
      { opType: 'ReorderInput', domain: NCHWC_DOMAIN, name: `${base}/w_rows`, input: [v], output: [`${base}/w_rows`] },
      // [I/B][Bi][O/B][kh·kw][Bo] → [O/B][I/B][kh·kw][Bi][Bo]
      ...reshapeNode(`${base}/w_split`, `${base}/w_rows`, [ig / block, block, o / block, kk, block]),
      transposeNode(`${base}/w_blocks`, `${base}/w_split`, [2, 0, 3, 1, 4]),
    ];
    if (!mirror) return [...nodes, ...reshapeNode(out, `${base}/w_blocks`, [o, ig, kh, kw])];
    return [...nodes, ...mirrorBlocks(base, mirror, [o, ig, kh, kw], block)];
  }
  // Split O (and I, for blocked inputs) where they lie in V, then one permutation to the blocked order.
  const split: number[] = [];
  const labels: string[] = [];
  const vs = src.vShape;
  for (let d = 0; d < 4; d++) {
    const k = p.indexOf(d);
    if (k === 0) (split.push(o / block, block), labels.push('o1', 'o0'));
    else if (k === 1 && inBlocks) (split.push(ig / block, block), labels.push('i1', 'i0'));
    else (split.push(vs[d]!), labels.push('oihw'[k]!));
  }
  const order = inBlocks ? ['o1', 'i1', 'h', 'w', 'i0', 'o0'] : ['o1', 'i', 'h', 'w', 'o0'];
  return [
    ...reshapeNode(`${base}/w_split`, v, split),
    transposeNode(
      `${base}/w_blocks`,
      `${base}/w_split`,
      order.map((l) => labels.indexOf(l)),
    ),
    ...reshapeNode(out, `${base}/w_blocks`, [o, ig, kh, kw]),
  ];
}

export const nchwcConv: Rule = {
  name: 'Conv with run-time weights as the NCHWc kernels',
  match: (n) => isOp(n, 'Conv'),
  applies: (n, { scope, params }) => blocked(n, scope, params.block) !== undefined,
  replace: (n, { scope, params }) => ({ nodes: blocked(n, scope, params.block)! }),
};

/**
 * `model` with each standard Conv whose weights are a run-time value, and whose input and weight
 * shapes are declared and fit the block, computed by the NCHWc kernels (subgraphs included).
 * Returns the model itself when nothing fits.
 */
export function nchwcConvs(model: ModelProto, block: number): ModelProto {
  return runStage(model, [nchwcConv], { block });
}

/**
 * Conv(x, w) where w is Transpose(mirror(v), perm) (either step optional): through the blocked
 * kernels, which reorder v itself, where the shapes are declared and fit `block`; otherwise the
 * mirror, the Transpose and the Conv as standard ops.
 */
export function emitConv(
  e: Emitter,
  x: Val,
  src: { v: Val; perm?: readonly number[]; mirror?: readonly number[] },
  a: ConvGeometry,
  block: number,
): Val {
  const { v, perm } = src;
  const wShape = (perm ? perm.map((i) => v.shape[i]!) : [...v.shape]) as [number, number, number, number];
  const fit = e.declares ? blockedFit(x.shape, wShape, a.group, block) : undefined;
  // The blocked form mirrors whole blocks only where the input is in blocks; otherwise the Slice stays.
  const mirrorAfter = fit?.inBlocks === true && perm?.join() === '1,0,2,3';
  const mirrored = src.mirror?.length && !mirrorAfter ? e.mirror(v, src.mirror) : v;
  if (!fit) return e.conv(x, perm ? e.transpose(mirrored, perm) : mirrored, a);
  const y = e.name('Conv');
  const source: WeightSource = {
    v: mirrored.name,
    vShape: mirrored.shape,
    ...(perm ? { perm } : {}),
    ...(src.mirror?.length && mirrorAfter ? { mirror: src.mirror } : {}),
  };
  const nodes = blockedConvNodes(y, x.name, source, wShape, undefined, e.convAttributes(a), fit.inBlocks, block);
  return e.raw(nodes, y, [x.shape[0]!, wShape[0], ...e.convOut(x.shape, wShape, a)]);
}
