/**
 * Batch norms in published weights that cannot be what they claim: a running variance below zero
 * (its square root does not exist), a batch norm whose statistics do not match its convolution's
 * channels, and an ONNX BatchNormalization left in training mode (it normalises by the batch it is
 * given, which no stored statistics reproduce). Each is refused in one line naming the tensor or node.
 */
import { join } from 'node:path';
import { badBnStateDict, trainingModeBnOnnx } from '../../test/import/bn-files.js';
import { assertRefused, cli, type Case } from './harness.js';

export const BN_IMPORT: Case[] = [
  {
    name: 'bn-negative-variance',
    what: 'a state dict whose running_var holds −0.25',
    async run(ctx) {
      const file = join(ctx.dir, 'vgg11_bn.safetensors');
      badBnStateDict(file, 'negative-variance');
      return assertRefused(
        await cli(['import', file, '--as', 'vgg-a-bn', '-o', join(ctx.dir, 'x.safetensors')]),
        /Expected running variances ≥ 0 for features\.1\.running_var in .*vgg11_bn\.safetensors but channel 2 holds -0\.25/,
      );
    },
  },
  {
    name: 'bn-channels',
    what: 'a batch norm with 3 running means after a 4-channel conv',
    async run(ctx) {
      const file = join(ctx.dir, 'vgg11_bn.safetensors');
      badBnStateDict(file, 'channels');
      return assertRefused(
        await cli(['import', file, '-o', join(ctx.dir, 'x.safetensors')]),
        /Expected 4 values \(the output channels of features\.0\.weight\) for features\.1\.running_mean in .* but received 3/,
      );
    },
  },
  {
    name: 'bn-onnx-training-mode',
    what: 'an ONNX BatchNormalization with training_mode 1',
    async run(ctx) {
      const file = join(ctx.dir, 'train-mode.onnx');
      await trainingModeBnOnnx(file);
      return assertRefused(
        await cli(['import', file, '--as', 'vgg-a-bn', '--width', '0.0625', '-o', join(ctx.dir, 'x.safetensors')]),
        /Expected BatchNormalization .* in .*train-mode\.onnx in eval mode .* but received training_mode 1/,
      );
    },
  },
];
