/**
 * Batch-normalised weight files that must be refused, written without PyTorch: a torchvision-style
 * state dict (a conv, then its BatchNorm2d) with one thing wrong, and an ilsvrc export of vgg-a-bn
 * whose first BatchNormalization is switched to training mode.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeModel, encodeModel, AttributeType } from '../../src/onnx/proto.js';
import { saveSafetensors, type TensorInput } from '../../src/runtime/safetensors.js';
import { ilsvrc } from '../cli/run.js';

const f32 = (n: number, v = 0.5): TensorInput => ({ dtype: 'F32', shape: [n], data: new Float32Array(n).fill(v) });

/**
 * features.0 (a 4-channel 3×3 conv) and features.1 (its batch norm), as torchvision's vgg*_bn starts,
 * changed by `fault`: "negative-variance" (channel 2's running_var is −0.25) or "channels" (3 running
 * means for 4 channels).
 */
export function badBnStateDict(path: string, fault: 'negative-variance' | 'channels'): void {
  const variance = f32(4, 1);
  if (fault === 'negative-variance') (variance.data as Float32Array)[2] = -0.25;
  mkdirSync(dirname(path), { recursive: true });
  saveSafetensors(path, {
    'features.0.weight': { dtype: 'F32', shape: [4, 3, 3, 3], data: new Float32Array(108).fill(0.1) },
    'features.0.bias': f32(4),
    'features.1.weight': f32(4, 1),
    'features.1.bias': f32(4, 0),
    'features.1.running_mean': f32(fault === 'channels' ? 3 : 4, 0),
    'features.1.running_var': variance,
    'features.1.num_batches_tracked': { dtype: 'I64', shape: [], data: new BigInt64Array([7n]) },
  });
}

/** vgg-a-bn at width 1/16 and 32 px exported by ilsvrc, its first BatchNormalization in training mode (opset 14+'s training_mode 1). */
export async function trainingModeBnOnnx(path: string): Promise<void> {
  const r = await ilsvrc(['export', 'vgg-a-bn', '--width', '0.0625', '--input-size', '32', '--classes', '10', '-o', path]);
  if (r.code !== 0) throw new Error(`export failed: ${r.stderr}`);
  const m = decodeModel(readFileSync(path));
  const bn = m.graph.node.find((n) => n.opType === 'BatchNormalization');
  if (!bn) throw new Error(`no BatchNormalization in ${path}`);
  bn.attribute = [...(bn.attribute ?? []), { name: 'training_mode', type: AttributeType.INT, i: 1 }];
  writeFileSync(path, encodeModel(m));
}
