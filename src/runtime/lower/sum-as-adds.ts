/**
 * WebGPU has no Sum kernel, so ORT would run every Sum (the SGD update's, over parameter-sized
 * tensors) on the CPU and copy its inputs and output across the bus; measured on an H100, those
 * copies were 83 % of an AlexNet step. Each Sum becomes a chain of Adds, which WebGPU runs.
 */
import type { NodeProto } from '../../onnx/proto.js';
import { isOp, type Rule } from './rule.js';

export const sumAsAdds: Rule = {
  name: 'Sum as a chain of Adds',
  match: (n) => isOp(n, 'Sum'),
  applies: (n) => n.input.length >= 2,
  replace(n) {
    const out = n.output[0] ?? '';
    const base = n.name || out;
    let acc = n.input[0] ?? '';
    const nodes = n.input.slice(1).map((x, i, rest): NodeProto => {
      const y = i === rest.length - 1 ? out : `${out}/sum${i}`;
      const add: NodeProto = { opType: 'Add', name: `${base}/add${i}`, input: [acc, x], output: [y], attribute: [] };
      acc = y;
      return add;
    });
    return { nodes };
  },
};
