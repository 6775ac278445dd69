/**
 * How a classifier wants its images and what it answers, as one description (`ModelInput`) that
 * the eval transforms, the feed, predict, evaluate and export all read. ilsvrc's own models are
 * NCHW at their square input size, ImageNet-normalised, and answer logits. An ONNX file from
 * another exporter is described by its graph: channels first or last (Keras through tf2onnx feeds
 * [N, H, W, 3]), a fixed H×W that need not be square, a Softmax already at the output; what a
 * graph cannot say (how its pixels are scaled) comes from the user's flags.
 */
import { defaultMean, defaultStd, Transforms, type EvalRecipe } from '../data/index.js';
import type { GraphProto, ValueInfoProto } from '../onnx/proto.js';
import { expected, UsageError } from '../util/errors.js';

export const INPUT_LAYOUTS = ['nchw', 'nhwc'] as const;
type InputLayout = (typeof INPUT_LAYOUTS)[number];

export interface ModelInput {
  /** Where the channels are: [N, C, H, W] or [N, H, W, C]. */
  layout: InputLayout;
  height: number;
  width: number;
  channels: 1 | 3;
  /** Each value fed is (pixel × scale − mean) / std per channel, pixel 0..255 (RGB or gray). */
  scale: number;
  mean: number[];
  std: number[];
  /** What the output holds: logits, or probabilities (a Softmax already ends the graph). */
  output: 'logits' | 'probabilities';
  /** The graph's fixed batch size, when it declares one: rows are fed in runs of it. */
  batch?: number;
}

/** The input flags a user gave (`--layout`, `--input-scale`, `--mean`, `--std`); each absent when not given. */
export interface InputFlags {
  layout?: InputLayout;
  inputScale?: number;
  mean?: number[];
  std?: number[];
}

/** The flag each field of InputFlags comes from, for messages. */
const FLAG = { layout: '--layout', inputScale: '--input-scale', mean: '--mean', std: '--std' } as const;

/** The input flags given, by name ("--layout, --mean"); empty when none was. */
export function givenInputFlags(f: InputFlags): string[] {
  return (Object.keys(FLAG) as (keyof InputFlags)[]).filter((k) => f[k] !== undefined).map((k) => FLAG[k]);
}

/** ilsvrc's own models: NCHW, size × size, [0, 1] pixels normalised by the ImageNet mean and std, logits out. */
export function zooInput(size: number, channels: number): ModelInput {
  const c = channels === 1 ? 1 : 3;
  return {
    layout: 'nchw',
    height: size,
    width: size,
    channels: c,
    scale: 1 / 255,
    mean: defaultMean(c),
    std: defaultStd(c),
    output: 'logits',
  };
}

/**
 * The mean and std the eval transforms take, which normalise (pixel / 255 − mean) / std: the
 * description's scale folded in, so that one normalisation step computes (pixel × scale − mean) / std.
 */
function transformNormalisation(d: ModelInput): { mean: number[]; std: number[] } {
  const k = 255 * d.scale;
  return { mean: d.mean.map((m) => m / k), std: d.std.map((s) => s / k) };
}

/** The eval transforms of a view (center, ten, …) that feed the model as it is described; `scales` for the multi-scale views. */
export function evalTransforms(d: ModelInput, view: EvalRecipe, scales?: readonly number[]): Transforms {
  const o = { size: d.width, height: d.height, channels: d.channels, ...transformNormalisation(d) };
  return Transforms.eval(view, scales ? { ...o, scales } : o);
}

/** `values` (1 or `channels` of them) as one per channel, or a one-line refusal naming the flag. */
function perChannel(values: readonly number[], channels: 1 | 3, flag: string, file: string): number[] {
  if (values.length === channels) return [...values];
  if (values.length === 1) return new Array<number>(channels).fill(values[0]!);
  const want = channels === 1 ? '1 value' : `1 or ${channels} values`;
  throw new UsageError(
    `Expected ${want} for ${flag} (${file} takes ${channels} channel${channels === 1 ? '' : 's'}) but received ${values.join(',')}`,
  );
}

/**
 * The description with the user's scaling applied. Without flags it is left as it is; given any of
 * --input-scale, --mean and --std, the others are the identity ([0, 1] pixels, mean 0, std 1), so
 * `--input-scale 1` alone feeds raw 0..255 pixels.
 */
function withScaling(d: ModelInput, f: InputFlags, file: string): ModelInput {
  if (f.inputScale === undefined && f.mean === undefined && f.std === undefined) return d;
  // Values given from code (the API's evaluate and predict) meet the flags' rule here.
  const bad = (ok: (n: number) => boolean, v: number | readonly number[] | undefined) => v !== undefined && ![v].flat().every(ok);
  const finite = (n: number) => Number.isFinite(n);
  const positive = (n: number) => Number.isFinite(n) && n > 0;
  if (bad(positive, f.inputScale)) throw expected('a positive number', FLAG.inputScale, f.inputScale);
  if (bad(finite, f.mean)) throw expected('finite numbers', FLAG.mean, f.mean);
  if (bad(positive, f.std)) throw expected('positive numbers', FLAG.std, f.std);
  const c = d.channels;
  return {
    ...d,
    scale: f.inputScale ?? 1 / 255,
    mean: perChannel(f.mean ?? [0], c, FLAG.mean, file),
    std: perChannel(f.std ?? [1], c, FLAG.std, file),
  };
}

/**
 * The flags given over those a file records: --layout over its layout, and any of --input-scale,
 * --mean and --std over its whole scaling (the others then the identity, as without a record).
 */
export function overInput(recorded: InputFlags | undefined, given: InputFlags): InputFlags {
  if (!recorded) return given;
  const scaling = given.inputScale !== undefined || given.mean !== undefined || given.std !== undefined;
  const layout = given.layout ?? recorded.layout;
  return { ...(scaling ? given : { ...recorded, ...given }), ...(layout !== undefined ? { layout } : {}) };
}

/** Declared dims of a graph input or output (undefined where symbolic or absent). */
export function dimsOf(v: ValueInfoProto): (number | undefined)[] | undefined {
  return v.type?.tensorType?.shape?.dim.map((d) => d.dimValue);
}

const show = (ds: readonly (number | undefined)[] | undefined) => (ds ? `[${ds.map((d) => d ?? '?').join(', ')}]` : 'no shape');
const isChannels = (d: number | undefined) => d === 1 || d === 3;

/** Whether the graph's first use of `input` is a Transpose to channels first (perm 0, 3, 1, 2), as tf2onnx writes. */
function transposedToNchw(g: GraphProto, input: string): boolean {
  const first = (g.node ?? []).find((n) => n.input.includes(input));
  const perm = first?.opType === 'Transpose' ? first.attribute?.find((a) => a.name === 'perm')?.ints : undefined;
  return perm !== undefined && perm.join() === '0,3,1,2';
}

/**
 * Where the channels are: `--layout` when given, else where the graph's shape has 1 or 3 and the
 * other candidate has not, else channels last when the input goes straight into a Transpose to NCHW.
 */
function layoutOf(g: GraphProto, input: string, dims: readonly (number | undefined)[], given: InputLayout | undefined): InputLayout {
  if (given) return given;
  const first = isChannels(dims[1]);
  const last = isChannels(dims[3]);
  if (first !== last) return first ? 'nchw' : 'nhwc';
  return transposedToNchw(g, input) ? 'nhwc' : 'nchw';
}

/** Shape-only ops between a Softmax and the graph's output: the output still holds probabilities. */
const PASS_THROUGH = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

/** Whether `output` is computed by a Softmax (through reshapes): probabilities, not logits. */
function isSoftmaxed(g: GraphProto, output: string): boolean {
  const byOutput = new Map((g.node ?? []).flatMap((n) => n.output.map((o) => [o, n] as const)));
  let n = byOutput.get(output);
  for (let hops = 0; n && PASS_THROUGH.has(n.opType) && hops < 16; hops++) n = byOutput.get(n.input[0] ?? '');
  return n?.opType === 'Softmax';
}

/**
 * An ONNX graph from elsewhere, described by its declared shapes and the user's flags: `inputSize`
 * fills an open height or width. Defaults to ImageNet normalisation of [0, 1] pixels, as
 * torchvision's exports expect.
 */
export function describeOnnxInput(
  file: string,
  g: GraphProto,
  io: { input: ValueInfoProto; output: ValueInfoProto },
  f: InputFlags,
  inputSize: number | undefined,
): ModelInput {
  const { input, output } = io;
  const dims = dimsOf(input);
  const shapes = '[N, 1 or 3, H, W] or [N, H, W, 1 or 3]';
  if (!dims || dims.length !== 4)
    throw new UsageError(`Expected ${file}'s input "${input.name}" to be ${shapes} but its graph declares ${show(dims)}`);
  if (f.layout !== undefined && !INPUT_LAYOUTS.includes(f.layout))
    throw expected(`one of ${INPUT_LAYOUTS.join(', ')}`, FLAG.layout, f.layout);
  const layout = layoutOf(g, input.name, dims, f.layout);
  const [c, h, w] = layout === 'nchw' ? [dims[1], dims[2], dims[3]] : [dims[3], dims[1], dims[2]];
  const height = h ?? inputSize;
  const width = w ?? inputSize;
  if (!isChannels(c)) {
    const want = layout === 'nchw' ? '[N, 1 or 3, H, W]' : '[N, H, W, 1 or 3]';
    const why = f.layout ? ` for --layout ${f.layout}` : '';
    throw new UsageError(`Expected ${file}'s input "${input.name}" to be ${want}${why} but its graph declares ${show(dims)}`);
  }
  if (height === undefined || width === undefined)
    throw new UsageError(
      `Expected ${file}'s input "${input.name}" to declare a fixed height and width but its graph declares ${show(dims)}`,
    );
  const base: ModelInput = {
    ...zooInput(1, c),
    layout,
    height,
    width,
    output: isSoftmaxed(g, output.name) ? 'probabilities' : 'logits',
    ...(dims[0] !== undefined ? { batch: dims[0] } : {}),
  };
  return withScaling(base, f, file);
}

/** A batch x [rows, C, H, W] as the graph takes it: the same values, or moved channels last. */
export function feedLayout(d: ModelInput, x: Float32Array, rows: number): { data: Float32Array; dims: number[] } {
  const { channels: C, height: H, width: W } = d;
  if (d.layout === 'nchw') return { data: x, dims: [rows, C, H, W] };
  const out = new Float32Array(rows * C * H * W);
  const plane = H * W;
  for (let r = 0; r < rows; r++) {
    const base = r * C * plane;
    for (let c = 0; c < C; c++) {
      const src = base + c * plane;
      for (let p = 0; p < plane; p++) out[base + p * C + c] = x[src + p]!;
    }
  }
  return { data: out, dims: [rows, H, W, C] };
}

/**
 * The model's output as logits. Probabilities become their logarithms: the softmax that scoring
 * applies then gives them back (p / Σp), so they are not softmaxed twice.
 */
export function asLogits(d: ModelInput, out: Float32Array): Float32Array {
  if (d.output === 'logits') return out;
  return out.map((p) => Math.log(p));
}
