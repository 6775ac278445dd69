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
 * The rewrite needs the shapes of each Conv's input and weights, which the training graphs declare
 * (SerializeOptions.shapes); a Conv whose shapes are not declared, whose weights are initializers,
 * or whose channels do not fit the block is left as it is. ILSVRC_NCHWC=0 turns the rewrite off.
 */
import { attribute, AttributeType, encodeModel, stringAttribute, type AttributeProto, type ModelProto, type NodeProto } from '../../onnx/proto.js';
import { BLOCKED_MAX_KERNEL } from '../../graph/graph.js';
import { constInts, type GraphScope } from '../graph-rewrite.js';
import { createSession, tensor } from '../ort.js';
import { isOp, runStage, type Rule } from './rule.js';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

function probeModel(): ModelProto {
  const vi = (name: string, c: number | string) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, typeof c === 'number' ? { dimValue: c } : { dimParam: c }, { dimValue: 1 }, { dimValue: 1 }] } } },
  });
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 18 }, { domain: NCHWC_DOMAIN, version: 1 }],
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
 * The nodes that compute `n` (a standard Conv) through the blocked kernels, or undefined when it
 * does not fit: the weights reordered (blockedWeights), the input reordered where it has blocks of
 * channels, the blocked Conv, and its output reordered back.
 */
function blocked(n: NodeProto, scope: GraphScope, block: number, folded: Set<NodeProto>): NodeProto[] | undefined {
  const [x, w, b] = n.input;
  const y = n.output[0];
  if (!x || !w || !y || scope.isInitializer(w)) return undefined;
  const xs = scope.shape(x);
  const ws = scope.shape(w);
  if (xs?.length !== 4 || ws?.length !== 4 || xs.some((d) => !(d > 0)) || ws.some((d) => !(d > 0))) return undefined;
  if (stringAttribute(n, 'auto_pad') && stringAttribute(n, 'auto_pad') !== 'NOTSET') return undefined;
  const group = attribute(n, 'group')?.i ?? 1;
  const [o, ig, kh, kw] = ws as [number, number, number, number];
  const c = xs[1]!;
  if (kh > BLOCKED_MAX_KERNEL || kw > BLOCKED_MAX_KERNEL || ig * group !== c || o % group !== 0) return undefined;
  // Input in blocks (OIHWBiBo weights), or a plain NCHW input of fewer channels than a block (OIHWBo).
  const inBlocks = ig % block === 0 && (o / group) % block === 0;
  const plain = group === 1 && c < block && o % block === 0;
  if (!inBlocks && !plain) return undefined;

  const base = `${y}/nchwc`;
  const nodes = blockedWeights(w, [o, ig, kh, kw], inBlocks, base, scope, block, folded);
  const attrs: AttributeProto[] = (n.attribute ?? []).filter((a) => ['strides', 'pads', 'dilations', 'group', 'kernel_shape'].includes(a.name));
  let xin = x;
  if (inBlocks) {
    xin = `${base}/x`;
    nodes.push({ opType: 'ReorderInput', domain: NCHWC_DOMAIN, name: xin, input: [x], output: [xin] });
  }
  nodes.push(
    { opType: 'Conv', domain: NCHWC_DOMAIN, name: `${base}/conv`, input: b ? [xin, `${base}/w`, b] : [xin, `${base}/w`], output: [`${base}/y`], attribute: attrs },
    { opType: 'ReorderOutput', domain: NCHWC_DOMAIN, name: `${base}/y_out`, input: [`${base}/y`], output: [y], attribute: [{ name: 'channels', type: AttributeType.INT, i: o }] },
  );
  return nodes;
}

function transposeNode(name: string, input: string, perm: readonly number[]): NodeProto {
  return { opType: 'Transpose', name, input: [input], output: [name], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [...perm] }] };
}

function reshapeNode(name: string, input: string, dims: readonly number[]): NodeProto[] {
  return [constInts(`${name}/dims`, dims), { opType: 'Reshape', name, input: [input, `${name}/dims`], output: [name] }];
}

/**
 * Nodes that turn the Conv weight `w` (shape [o, ig, kh, kw]) into the blocked kernels' layout, the
 * last one's output named `${base}/w`. Fast forms, from MLAS's own ReorderInput and a Transpose that
 * moves whole blocks (1024×384×3×3 weights on 2 cores: 9–13 ms where one six-axis Transpose took
 * 25–34 ms):
 * - blocked input, weights as they are: ReorderInput gives [O][I/B][kh·kw][Bi]; moving the
 *   output-channel block innermost is one three-axis Transpose;
 * - blocked input, weights made by Transpose(V, [1, 0, 2, 3]) (input gradients, and weight gradients
 *   as a Conv over the batch): ReorderInput of V, then one Transpose of block rows; where V is a
 *   mirrored window (Slice with steps −1 over the kernel axes: input gradients), the mirror is taken
 *   on the reordered weights, whose blocks stay whole;
 * - an input of fewer channels than a block: the three-axis Transpose alone;
 * - otherwise one Transpose of the weights split into blocks.
 * Read-through producers land in `folded` (dropped where nothing else reads them).
 */
function blockedWeights(
  w: string,
  [o, ig, kh, kw]: readonly [number, number, number, number],
  inBlocks: boolean,
  base: string,
  scope: GraphScope,
  block: number,
  folded: Set<NodeProto>,
): NodeProto[] {
  const out = `${base}/w`;
  const kk = kh * kw;
  const t = scope.producer(w);
  const p = t?.opType === 'Transpose' && (t.domain ?? '') === '' ? attribute(t, 'perm')?.ints : undefined;
  const v = t?.input[0];
  const through = p?.length === 4 && v !== undefined && scope.shape(v)?.length === 4;

  if (!through) {
    const rows = inBlocks ? `${base}/w_rows` : w;
    return [
      ...(inBlocks ? [{ opType: 'ReorderInput', domain: NCHWC_DOMAIN, name: rows, input: [w], output: [rows] }] : []),
      ...reshapeNode(`${base}/w_split`, rows, [o / block, block, ig * kk]),
      transposeNode(`${base}/w_blocks`, `${base}/w_split`, [0, 2, 1]),
      ...reshapeNode(out, `${base}/w_blocks`, [o, ig, kh, kw]),
    ];
  }
  folded.add(t!);
  if (inBlocks && p!.join() === '1,0,2,3') {
    // V is [ig, o, kh, kw]; a mirrored V is read from before its Slice.
    const m = scope.producer(v!);
    const mirror = m?.opType === 'Slice' && (m.domain ?? '') === '' && m.input[0] !== undefined ? mirrored(m, [kh, kw], scope) : undefined;
    const src = mirror ? m!.input[0]! : v!;
    if (mirror) folded.add(m!);
    const nodes: NodeProto[] = [
      { opType: 'ReorderInput', domain: NCHWC_DOMAIN, name: `${base}/w_rows`, input: [src], output: [`${base}/w_rows`] },
      // [I/B][Bi][O/B][kh·kw][Bo] → [O/B][I/B][kh·kw][Bi][Bo]
      ...reshapeNode(`${base}/w_split`, `${base}/w_rows`, [ig / block, block, o / block, kk, block]),
      transposeNode(`${base}/w_blocks`, `${base}/w_split`, [2, 0, 3, 1, 4]),
    ];
    if (!mirror) return [...nodes, ...reshapeNode(out, `${base}/w_blocks`, [o, ig, kh, kw])];
    const axes = mirror.map((a) => a - 1);
    return [
      ...nodes,
      ...reshapeNode(`${base}/w_tiles`, `${base}/w_blocks`, [(o / block) * (ig / block), kh, kw, block * block]),
      constInts(`${base}/w_flip/starts`, axes.map(() => -1)),
      constInts(`${base}/w_flip/ends`, axes.map((a) => -[kh, kw][a - 1]! - 1)),
      constInts(`${base}/w_flip/axes`, axes),
      constInts(`${base}/w_flip/steps`, axes.map(() => -1)),
      {
        opType: 'Slice',
        name: `${base}/w_flip`,
        input: [`${base}/w_tiles`, `${base}/w_flip/starts`, `${base}/w_flip/ends`, `${base}/w_flip/axes`, `${base}/w_flip/steps`],
        output: [`${base}/w_flip`],
      },
      ...reshapeNode(out, `${base}/w_flip`, [o, ig, kh, kw]),
    ];
  }
  // Split O (and I, for blocked inputs) where they lie in V, then one permutation to the blocked order.
  const split: number[] = [];
  const labels: string[] = [];
  const vs = scope.shape(v!)!;
  for (let d = 0; d < 4; d++) {
    const k = p!.indexOf(d);
    if (k === 0) split.push(o / block, block), labels.push('o1', 'o0');
    else if (k === 1 && inBlocks) split.push(ig / block, block), labels.push('i1', 'i0');
    else split.push(vs[d]!), labels.push('oihw'[k]!);
  }
  const order = inBlocks ? ['o1', 'i1', 'h', 'w', 'i0', 'o0'] : ['o1', 'i', 'h', 'w', 'o0'];
  return [
    ...reshapeNode(`${base}/w_split`, v!, split),
    transposeNode(`${base}/w_blocks`, `${base}/w_split`, order.map((l) => labels.indexOf(l))),
    ...reshapeNode(out, `${base}/w_blocks`, [o, ig, kh, kw]),
  ];
}

/**
 * The kernel axes (2, 3) that Slice `m` mirrors whole (starts −1, ends −k−1, steps −1) when it does
 * nothing else, or undefined.
 */
function mirrored(m: NodeProto, kernel: readonly [number, number], scope: GraphScope): number[] | undefined {
  const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => (m.input[i] ? scope.ints(m.input[i]!) : undefined));
  if (!starts || !ends || !axes || !steps || axes.length === 0) return undefined;
  const ok = axes.every((a, i) => (a === 2 || a === 3) && starts[i] === -1 && ends[i] === -kernel[a - 2]! - 1 && steps[i] === -1);
  return ok && new Set(axes).size === axes.length ? [...axes].sort() : undefined;
}

export const nchwcConv: Rule = {
  name: 'Conv with run-time weights as the NCHWc kernels',
  match: (n) => isOp(n, 'Conv'),
  applies: (n, { scope, params }) => params.block > 1 && blocked(n, scope, params.block, new Set()) !== undefined,
  replace(n, { scope, params }) {
    // What the blocked weights read through is dropped where nothing else reads it.
    const folded = new Set<NodeProto>();
    const nodes = blocked(n, scope, params.block, folded)!;
    return { nodes, unread: [...folded], opset: { domain: NCHWC_DOMAIN, version: 1 } };
  },
};

/**
 * `model` with each standard Conv whose weights are a run-time value, and whose input and weight
 * shapes are declared and fit the block, computed by the NCHWc kernels (subgraphs included).
 * Returns the model itself when nothing fits.
 */
export function nchwcConvs(model: ModelProto, block: number): ModelProto {
  return runStage(model, [nchwcConv], { block });
}
