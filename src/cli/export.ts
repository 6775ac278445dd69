/** `ilsvrc export <model> -o file.onnx`: an inference model with seeded or trained weights. */
import { dirname } from 'node:path';
import { Command, Option } from 'commander';
import { exportModel } from '../trained/export.js';
import { fileInFolder, ensureDir, writeFileAtomic } from '../util/fsx.js';
import { thousands } from './format.js';
import { addModelOptions, modelOptionsFrom, opset, seed, type ModelFlags } from './options.js';
import { buildModel } from '../zoo/index.js';
import { inferenceParams } from '../zoo/export.js';
import { requireMemory } from '../util/budget.js';

interface ExportFlags extends ModelFlags {
  output: string;
  seed: number;
  opset: 17 | 18;
  checkpoint?: string;
}

export function makeExportCommand(): Command {
  const cmd = new Command('export')
    .description('write an ONNX inference model (dynamic batch, output "logits")')
    .argument('<model>', 'model name or alias (see `ilsvrc models`)')
    .requiredOption('-o, --output <file>', 'the .onnx file to write (in a folder: <model>.onnx)')
    .addOption(new Option('--seed <n>', 'seed of the random initialisation').argParser(seed).default(0))
    .addOption(new Option('--opset <n>', 'ONNX opset, 17 or 18').argParser(opset).default(18))
    .option('--checkpoint <file>', 'weights from a training checkpoint (.safetensors); its model options are the defaults');
  return addModelOptions(cmd).action(async (name: string, flags: ExportFlags) => {
    const given = modelOptionsFrom(flags);
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
