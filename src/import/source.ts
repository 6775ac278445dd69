/**
 * What every published-weights reader produces: the weight layers of the network in a canonical
 * order (a post-order walk back from its output, inputs in their listed order, so that two graphs
 * computing the same function list their layers alike however their files order the nodes), and
 * the facts about it that a weight shape does not show (LRN constants, pooling mode, input shape).
 */
import type { LrnAttrs } from '../ops/lrn.js';
import { UsageError } from '../util/errors.js';

export type SourceFormat = 'onnx' | 'caffemodel' | 'safetensors';

export interface SourceLayer {
  /** The weight tensor's (or Caffe layer's) name in the file, for messages. */
  name: string;
  /** Weights laid out as ilsvrc keeps them: conv (O, I/groups, kh, kw); fully connected (out, in). */
  weight: Float32Array;
  shape: number[];
  bias: Float32Array | undefined;
  /** The bias tensor's name in the file, for messages (absent: the bias of `name`). */
  biasName?: string;
  /** Convolution attributes when the file states them. */
  group?: number;
  strides?: number[];
  /** [top, left, bottom, right]. */
  pads?: number[];
  /** The batch norm that normalises this convolution's output, when the file keeps it apart (not folded into the weights). */
  bn?: SourceBn;
}

/** A batch norm's four tensors (torch.nn.BatchNorm2d's weight, bias, running_mean, running_var), checked by `checkedBn`. */
export interface SourceBn {
  /** The module (state dict) or node (ONNX) name, for messages. */
  name: string;
  weight: Float32Array;
  bias: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  /** ε when the file states it (ONNX does; a state dict does not). */
  eps?: number;
}

export interface SourceLrn {
  name: string;
  /** In ONNX's convention (alpha divided by size, bias = Caffe's k). */
  attrs: LrnAttrs;
}

export interface Source {
  format: SourceFormat;
  layers: SourceLayer[];
  lrn: SourceLrn[];
  /** True when the first normalisation follows a max pool on the way from the input. */
  normAfterPool: boolean;
  /** Max pools round up (Caffe's mode, ceil_mode = 1 or the extra end padding that emulates it), round down, or the file has none. */
  pool: 'floor' | 'ceil' | undefined;
  /** N, C, H, W when the file states it. */
  inputShape: number[] | undefined;
  /** The pixels the network takes when the file states it: a .caffemodel always, an ilsvrc export in its options. */
  input?: 'torchvision' | 'caffe';
  /** Weight layers present in the file but not on the path to its output (e.g. GoogLeNet's auxiliary heads). */
  unused: string[];
  /** Whether the graph rescales its input channels before the first convolution (torchvision's GoogLeNet transform_input), when the file shows it. */
  transformInput?: boolean;
}

/**
 * A batch norm as a reader found it, refused unless its four tensors have one value per channel of
 * the convolution before it and every running variance is a finite number ≥ 0 (a negative one has
 * no square root: the outputs would be NaN).
 */
export function checkedBn(bn: SourceBn, channels: number, what: { file: string; conv: string; names: readonly string[] }): SourceBn {
  const tensors = [bn.weight, bn.bias, bn.mean, bn.variance];
  tensors.forEach((t, i) => {
    if (t.length !== channels)
      throw new UsageError(
        `Expected ${channels} values (the output channels of ${what.conv}) for ${what.names[i]} in ${what.file} but received ${t.length}`,
      );
  });
  const bad = bn.variance.findIndex((v) => !(v >= 0) || !Number.isFinite(v));
  if (bad >= 0)
    throw new UsageError(
      `Expected running variances ≥ 0 for ${what.names[3]} in ${what.file} but channel ${bad} holds ${bn.variance[bad]}`,
    );
  if (bn.eps !== undefined && !(bn.eps > 0 && Number.isFinite(bn.eps)))
    throw new UsageError(`Expected an epsilon > 0 for batch norm ${bn.name} in ${what.file} but received ${bn.eps}`);
  return bn;
}

/**
 * Post-order walk from `roots` over `inputsOf`, visiting inputs in order: every node after the
 * nodes it reads, and the order fixed by the wiring rather than by how the file lists the nodes.
 */
export function postOrder<K>(roots: readonly K[], inputsOf: (k: K) => readonly K[]): K[] {
  const seen = new Set<K>();
  const out: K[] = [];
  // Iterative, so that deep graphs cannot overflow the stack.
  const stack: { k: K; i: number }[] = [];
  for (const r of roots) {
    if (seen.has(r)) continue;
    seen.add(r);
    stack.push({ k: r, i: 0 });
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const ins = inputsOf(top.k);
      if (top.i < ins.length) {
        const next = ins[top.i++]!;
        if (!seen.has(next)) {
          seen.add(next);
          stack.push({ k: next, i: 0 });
        }
      } else {
        out.push(top.k);
        stack.pop();
      }
    }
  }
  return out;
}

/** (rows, cols) → (cols, rows). */
export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return t;
}

/** Little-endian float32 or float64 bytes as a fresh (aligned) Float32Array. */
export function floatsFromBytes(bytes: Uint8Array, double: boolean): Float32Array {
  // A copy (the file's bytes need not be 4-aligned); typed arrays are little-endian on every host Node supports here.
  if (!double) {
    const copy = new Uint8Array(bytes.byteLength - (bytes.byteLength % 4));
    copy.set(bytes.subarray(0, copy.byteLength));
    return new Float32Array(copy.buffer);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const step = double ? 8 : 4;
  const out = new Float32Array(Math.floor(bytes.byteLength / step));
  for (let i = 0; i < out.length; i++) out[i] = double ? view.getFloat64(i * step, true) : view.getFloat32(i * step, true);
  return out;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
