/**
 * On the CPU, a MaxPoolGrad whose windows tile the input (kernel = stride, no padding or dilation:
 * VGG's 2×2/2 pools) as MaxUnpool: every input element is picked at most once, so zeros with each
 * dy written at its index equal the scatter-add, ties included (both go to the first element).
 * A 2×2/2 pool of 128×16×32×32 with its gradient: 16.9 ms with the scatter, 11.2 with MaxUnpool on
 * 2 cores. CUDA and WebGPU have no MaxUnpool kernel.
 */
import { attribute, stringAttribute, type NodeProto } from '../../onnx/proto.js';
import { constInts } from '../graph-rewrite.js';
import { poolShape } from './max-pool-grad.js';
import { COMPOSITE_DOMAIN, isOp, type Rule } from './rule.js';

/** Whether the pool's windows tile its input without overlap or padding. */
function tiles(n: NodeProto): boolean {
  const k = attribute(n, 'kernel_shape')?.ints;
  const s = attribute(n, 'strides')?.ints ?? k?.map(() => 1);
  const pads = attribute(n, 'pads')?.ints ?? [];
  const dil = attribute(n, 'dilations')?.ints ?? [];
  const autoPad = stringAttribute(n, 'auto_pad');
  return (
    k !== undefined &&
    s !== undefined &&
    k.length === s.length &&
    k.every((d, i) => d === s[i]) &&
    pads.every((p) => p === 0) &&
    dil.every((d) => d === 1) &&
    (!autoPad || autoPad === 'NOTSET')
  );
}

export const maxUnpool: Rule = {
  name: 'MaxPoolGrad of a tiling pool as MaxUnpool',
  match: (n) => isOp(n, 'MaxPoolGrad', COMPOSITE_DOMAIN),
  applies: (n) => tiles(n) && poolShape(n, 'x_shape').length >= 3,
  replace(n) {
    const [dy, indices] = n.input as [string, string];
    const out = n.output[0]!;
    const shape = `${out}/unpool/shape`;
    const attribute = (n.attribute ?? []).filter((a) => a.name === 'kernel_shape' || a.name === 'strides');
    const unpool: NodeProto = { opType: 'MaxUnpool', name: `${out}/unpool`, input: [dy, indices, shape], output: [out], attribute };
    return { nodes: [constInts(shape, poolShape(n, 'x_shape')), unpool] };
  },
};
