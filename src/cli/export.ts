/** `ilsvrc export <model> -o file.onnx`: an inference model with seeded or trained weights. */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command, Option } from 'commander';
import { buildModel, findModel } from '../../graphs/index.js';
import { initParams } from '../graph/init.js';
import { checkpointWeights, exportInferenceModel, flatTensors, inferenceParams } from '../runtime/export.js';
import { loadSafetensors } from '../runtime/safetensors.js';
import { cardMetadata } from '../train/card.js';
import { readTrained, zooModel } from '../train/inference.js';
import { UsageError } from '../util/errors.js';
import { fileInFolder, ensureDir, writeFileAtomic } from '../util/fsx.js';
import { thousands } from './format.js';
import { addModelOptions, modelOptionsFrom, opset, seed, type ModelFlags } from './options.js';

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
    let given = modelOptionsFrom(flags);
    const ckpt = flags.checkpoint;
    if (ckpt !== undefined && !existsSync(ckpt)) throw new UsageError(`Expected a checkpoint for --checkpoint but ${ckpt} does not exist`);
    // Weights by ilsvrc's parameter names without an "ilsvrc" entry (not a training run's) fit the flags' model.
    const plain = ckpt !== undefined && /\.safetensors$/i.test(ckpt) && loadSafetensors(ckpt, { headerOnly: true }).metadata['ilsvrc'] === undefined;
    // The one reader of trained models: metadata and every weight checked against the model it describes.
    const trained = ckpt === undefined || plain ? undefined : zooModel(await readTrained(ckpt), 'export');
    if (trained) {
      const asked = findModel(name).name;
      if (trained.model !== asked) throw new UsageError(`Expected a ${asked} model in --checkpoint ${trained.file} but it holds ${trained.model}`);
      // The training options are the defaults here; flags given on this command line win.
      given = { ...trained.options, ...given, aux: false };
    }
    const built = buildModel(name, given);
    const params = inferenceParams(built);
    const weights = trained
      ? checkpointWeights(params, { tensors: flatTensors(trained.weights) }, trained.file).weights
      : plain && ckpt !== undefined
        ? checkpointWeights(params, loadSafetensors(ckpt), ckpt).weights
        : initParams(params, flags.seed);
    // The model card: what evaluate, predict and visualize need to treat the file as its checkpoint.
    const metadata = cardMetadata({
      ...(trained?.classes ? { classes: trained.classes } : {}),
      ...(trained ? { view: trained.view } : {}),
      ...(trained?.data ? { data: trained.data } : {}),
      size: built.options.inputSize,
      channels: built.options.channels,
    });
    const bytes = exportInferenceModel(built, weights, { opset: flags.opset, metadata });
    const output = fileInFolder(flags.output, `${built.spec.name}.onnx`);
    ensureDir(dirname(output), '--output');
    writeFileAtomic(output, bytes);
    const count = params.reduce((n, p) => n + p.value.size, 0);
    const source = flags.checkpoint === undefined ? `seed ${flags.seed}` : flags.checkpoint;
    process.stdout.write(
      `wrote ${output}: ${built.spec.name}, ${thousands(count)} params from ${source}, opset ${flags.opset}, ${(bytes.byteLength / 1e6).toFixed(1)} MB\n`,
    );
  });
}
