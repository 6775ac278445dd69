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
import { AttributeType, encodeModel, type AttributeProto, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js';
import { BLOCKED_MAX_KERNEL } from '../graph/graph.js';
import { createSession, tensor } from './ort.js';

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

type Dims = readonly number[];

function ints(n: NodeProto, name: string): number[] | undefined {
  return n.attribute?.find((a) => a.name === name)?.ints;
}

function int(n: NodeProto, name: string): number | undefined {
  return n.attribute?.find((a) => a.name === name)?.i;
}

/**
 * The nodes that compute `n` (a standard Conv) through the blocked kernels, or undefined when it
 * does not fit. Weights made by a Transpose (the input gradient's and the weight gradient's Convs)
 * are reordered from the Transpose's input in one permutation; `folded` receives that Transpose.
 */
function blocked(
  n: NodeProto,
  shape: (name: string) => Dims | undefined,
  isInit: (name: string) => boolean,
  producer: (name: string) => NodeProto | undefined,
  block: number,
  folded: Set<NodeProto>,
): NodeProto[] | undefined {
  const [x, w, b] = n.input;
  const y = n.output[0];
  if (!x || !w || !y || isInit(w)) return undefined;
  const xs = shape(x);
  const ws = shape(w);
  if (xs?.length !== 4 || ws?.length !== 4 || xs.some((d) => !(d > 0)) || ws.some((d) => !(d > 0))) return undefined;
  const autoPad = n.attribute?.find((a) => a.name === 'auto_pad')?.s;
  if (autoPad && autoPad.length && new TextDecoder().decode(autoPad) !== 'NOTSET') return undefined;
  const group = int(n, 'group') ?? 1;
  const [o, ig, kh, kw] = ws as [number, number, number, number];
  const c = xs[1]!;
  if (kh > BLOCKED_MAX_KERNEL || kw > BLOCKED_MAX_KERNEL || ig * group !== c || o % group !== 0) return undefined;
  // Input in blocks (OIHWBiBo weights), or a plain NCHW input of fewer channels than a block (OIHWBo).
  const inBlocks = ig % block === 0 && (o / group) % block === 0;
  const plain = group === 1 && c < block && o % block === 0;
  if (!inBlocks && !plain) return undefined;

  // W = Transpose(V, p) (W's axis k is V's axis p[k]) where that can be read through; else V = W.
  const t = producer(w);
  const p = t?.opType === 'Transpose' && (t.domain ?? '') === '' ? ints(t, 'perm') : undefined;
  const through = p?.length === 4 && t?.input[0] && shape(t.input[0])?.length === 4;
  const v = through ? t!.input[0]! : w;
  const perm4 = through ? p! : [0, 1, 2, 3];
  // Split O (and I, for blocked inputs) where they lie in V, then one permutation to the blocked order.
  const split: number[] = [];
  const labels: string[] = [];
  for (let d = 0; d < 4; d++) {
    const k = perm4.indexOf(d);
    if (k === 0) split.push(o / block, block), labels.push('o1', 'o0');
    else if (k === 1 && inBlocks) split.push(ig / block, block), labels.push('i1', 'i0');
    else split.push(ws[k]!), labels.push('oihw'[k]!);
  }
  const order = inBlocks ? ['o1', 'i1', 'h', 'w', 'i0', 'o0'] : ['o1', 'i', 'h', 'w', 'o0'];
  const perm = order.map((l) => labels.indexOf(l));
  if (through) folded.add(t!);

  const base = `${y}/nchwc`;
  const constInts = (name: string, values: number[]): NodeProto => ({
    opType: 'Constant',
    name,
    input: [],
    output: [name],
    attribute: [{ name: 'value_ints', type: AttributeType.INTS, ints: values }],
  });
  const attrs: AttributeProto[] = (n.attribute ?? []).filter((a) => ['strides', 'pads', 'dilations', 'group', 'kernel_shape'].includes(a.name));
  const nodes: NodeProto[] = [
    constInts(`${base}/split`, split),
    constInts(`${base}/shape`, [o, ig, kh, kw]),
    { opType: 'Reshape', name: `${base}/w_split`, input: [v, `${base}/split`], output: [`${base}/w_split`] },
    { opType: 'Transpose', name: `${base}/w_blocks`, input: [`${base}/w_split`], output: [`${base}/w_blocks`], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: perm }] },
    { opType: 'Reshape', name: `${base}/w`, input: [`${base}/w_blocks`, `${base}/shape`], output: [`${base}/w`] },
  ];
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

/** Names a graph's nodes read, its subgraphs' included (a subgraph may read an outer value). */
function readNames(g: GraphProto, into: Set<string>): Set<string> {
  for (const n of g.node) {
    for (const i of n.input) if (i) into.add(i);
    for (const a of n.attribute ?? []) if (a.g) readNames(a.g, into);
  }
  for (const v of g.output) into.add(v.name);
  return into;
}

/**
 * `model` with each standard Conv whose weights are a run-time value, and whose input and weight
 * shapes are declared and fit the block, computed by the NCHWc kernels (subgraphs included).
 * Returns the model itself when nothing fits.
 */
export function nchwcConvs(model: ModelProto, block: number): ModelProto {
  if (block <= 1) return model;
  let changed = 0;
  const rewrite = (g: GraphProto, outer: ReadonlyMap<string, Dims>, outerInits: ReadonlySet<string>): GraphProto => {
    const shapes = new Map(outer);
    const dimsOf = (v: { type?: { tensorType?: { shape?: { dim?: { dimValue?: number }[] } } } }) =>
      (v.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimValue ?? 0);
    for (const v of [...g.input, ...(g.valueInfo ?? []), ...g.output]) shapes.set(v.name, dimsOf(v));
    const inits = new Set(outerInits);
    for (const t of g.initializer ?? []) {
      inits.add(t.name);
      shapes.set(t.name, t.dims ?? []);
    }
    const producers = new Map<string, NodeProto>();
    for (const n of g.node) for (const o of n.output) if (o) producers.set(o, n);
    const folded = new Set<NodeProto>();
    let node = g.node.flatMap((n): NodeProto[] => {
      const sub = n.attribute?.some((a) => a.g);
      const m = sub ? { ...n, attribute: n.attribute!.map((a) => (a.g ? { ...a, g: rewrite(a.g, shapes, inits) } : a)) } : n;
      if (m.opType !== 'Conv' || (m.domain ?? '') !== '') return [m];
      const out = blocked(m, (name) => shapes.get(name), (name) => inits.has(name), (name) => producers.get(name), block, folded);
      if (!out) return [m];
      changed++;
      return out;
    });
    // A Transpose read through is dropped where nothing else reads it.
    if (folded.size) {
      const read = readNames({ ...g, node }, new Set());
      node = node.filter((n) => !folded.has(n) || n.output.some((o) => read.has(o)));
    }
    return { ...g, node };
  };
  const graph = rewrite(model.graph, new Map(), new Set());
  if (!changed) return model;
  const opsetImport = model.opsetImport.some((o) => o.domain === NCHWC_DOMAIN) ? model.opsetImport : [...model.opsetImport, { domain: NCHWC_DOMAIN, version: 1 }];
  return { ...model, opsetImport, graph };
}
