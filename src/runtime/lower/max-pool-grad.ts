/**
 * MaxPoolGrad (src/ops/pool.ts) as standard ops: dy added into zeros at the recorded argmax with
 * ScatterElements(reduction 'add'), right for any window, overlapping or not. Every provider runs it.
 */
import { tensorProto } from '../../graph/serialize.js';
import { attribute, AttributeType, TensorDataType, type NodeProto } from '../../onnx/proto.js';
import { COMPOSITE_DOMAIN, isOp, type Rule } from './rule.js';
import { declaredType, Emitter } from './emit.js';

/** The pool's input (x_shape) or output (y_shape) shape a MaxPoolGrad node carries. */
export function poolShape(n: NodeProto, which: 'x_shape' | 'y_shape'): number[] {
  const s = attribute(n, which)?.ints;
  if (!s) throw new Error(`${n.name ?? 'MaxPoolGrad'}: no ${which} attribute`);
  return s;
}

export const maxPoolGradScatter: Rule = {
  name: 'MaxPoolGrad as ScatterElements',
  match: (n) => isOp(n, 'MaxPoolGrad', COMPOSITE_DOMAIN),
  applies: () => true,
  replace(n, { scope }) {
    const [dy, indices] = n.input as [string, string];
    const xs = poolShape(n, 'x_shape');
    const ys = poolShape(n, 'y_shape');
    const size = xs.reduce((a, b) => a * b, 1);
    const pooled = ys.reduce((a, b) => a * b, 1);
    const dtype = attribute(n, 'dtype')?.i ?? TensorDataType.FLOAT;
    const e = new Emitter(`${n.output[0]}/scatter`, declaredType(scope, dy));
    const zero = `${n.output[0]}/scatter/zero`;
    const double = dtype === TensorDataType.DOUBLE;
    const t = double ? tensorProto('', [], new Float64Array(1), 'float64') : tensorProto('', [], new Float32Array(1), 'float32');
    const value = { name: 'value', type: AttributeType.TENSOR, t };
    e.nodes.push({ opType: 'Constant', name: zero, input: [], output: [zero], attribute: [value] });
    const zeros = e.node('Expand', [zero, e.ints([size])], [size]);
    const at = e.reshape({ name: indices, shape: ys, elemType: TensorDataType.INT64 }, [pooled]);
    const updates = e.reshape({ name: dy, shape: ys }, [pooled]);
    const flat = e.node(
      'ScatterElements',
      [zeros.name, at.name, updates.name],
      [size],
      [
        { name: 'axis', type: AttributeType.INT, i: 0 },
        { name: 'reduction', type: AttributeType.STRING, s: new TextEncoder().encode('add') },
      ],
    );
    return e.finish(e.reshape(flat, xs), n.output[0]!);
  },
};
