/** `ilsvrc export <model> -o file.onnx`: an inference model with seeded or trained weights. */
import { basename, dirname } from 'node:path';
import { Command, Option } from 'commander';
import { exportModel, reexportOnnx } from '../trained/export.js';
import { fileInFolder, ensureDir, writeFileAtomic } from '../util/fsx.js';
import { thousands } from './format.js';
import { addInputOptions, addModelOptions, inputFlagsFrom, modelOptionsFrom, opset, seed, type ModelFlags } from './options.js';
import type { InputFlags } from '../trained/input.js';
import { UsageError } from '../util/errors.js';
import { optionFlag, type ModelOptionName } from '../zoo/options.js';
import { buildModel } from '../zoo/index.js';
import { inferenceParams } from '../zoo/export.js';
import { requireMemory } from '../util/budget.js';

interface ExportFlags extends ModelFlags, InputFlags {
  output: string;
  seed: number;
  opset: 17 | 18;
  checkpoint?: string;
}

export function makeExportCommand(): Command {
  const cmd = new Command('export')
    .description('write an ONNX inference model (dynamic batch, output "logits")')
    .argument('<model>', 'model name or alias (see `ilsvrc models`), or an ONNX model from elsewhere to write with how it is fed')
    .requiredOption('-o, --output <file>', 'the .onnx file to write (in a folder: <model>.onnx)')
    .addOption(new Option('--seed <n>', 'seed of the random initialisation').argParser(seed).default(0))
    .addOption(new Option('--opset <n>', 'ONNX opset, 17 or 18').argParser(opset).default(18))
    .option('--checkpoint <file>', 'weights from a training checkpoint (.safetensors); its model options are the defaults');
  return addInputOptions(addModelOptions(cmd)).action(async (name: string, flags: ExportFlags) => {
    const given = modelOptionsFrom(flags);
    if (/\.onnx$/i.test(name))
      return reexport(
        name,
        flags,
        Object.keys(given).map((k) => optionFlag(k as ModelOptionName)),
      );
    // Seeded weights are made here: the graph (symbolic, no memory) says how many before they are.
    if (flags.checkpoint === undefined) {
      const params = inferenceParams(buildModel(name, given)).reduce((n, p) => n + p.value.size, 0);
      // The weights, their serialised copy and the file's bytes.
      const what = `the weights of ${name} with these options (${thousands(params)} parameters)`;
      requireMemory(3 * 4 * params, what, 'a smaller --width, --input-size or --classes');
    }
    const { bytes, built, params } = await exportModel(name, {
      ...(Object.keys(given).length ? { modelOptions: given } : {}),
      ...(flags.checkpoint !== undefined ? { checkpoint: flags.checkpoint } : {}),
      seed: flags.seed,
      opset: flags.opset,
      input: inputFlagsFrom(flags),
    });
    const output = fileInFolder(flags.output, `${built.spec.name}.onnx`);
    ensureDir(dirname(output), '--output');
    writeFileAtomic(output, bytes);
    const source = flags.checkpoint === undefined ? `seed ${flags.seed}` : flags.checkpoint;
    process.stdout.write(
      `wrote ${output}: ${built.spec.name}, ${thousands(params)} params from ${source}, opset ${flags.opset}, ${(bytes.byteLength / 1e6).toFixed(1)} MB\n`,
    );
  });
}

/** An ONNX model from elsewhere written again with the input flags recorded in its metadata (its graph as it is). */
async function reexport(file: string, flags: ExportFlags, modelFlags: string[]): Promise<void> {
  if (flags.checkpoint !== undefined || modelFlags.length > 0) {
    const what = flags.checkpoint !== undefined ? '--checkpoint' : modelFlags.join(', ');
    throw new UsageError(`Expected a model name with ${what} but received the ONNX file ${file} (its graph is written as it is)`);
  }
  const { bytes } = await reexportOnnx(file, inputFlagsFrom(flags));
  const output = fileInFolder(flags.output, basename(file));
  ensureDir(dirname(output), '--output');
  writeFileAtomic(output, bytes);
  process.stdout.write(`wrote ${output}: ${file} with how it is fed recorded (ilsvrc.input), ${(bytes.byteLength / 1e6).toFixed(1)} MB\n`);
}
