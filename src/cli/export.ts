/** `ilsvrc export <model> -o file.onnx`: an inference model with seeded or trained weights. */
import { dirname } from 'node:path';
import { Command, Option } from 'commander';
import { buildModel, findModel } from '../../graphs/index.js';
import { initParams } from '../graph/init.js';
import { checkpointWeights, exportInferenceModel, inferenceParams, trainedAs } from '../runtime/export.js';
import { loadSafetensors, type Safetensors } from '../runtime/safetensors.js';
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
  return addModelOptions(cmd).action((name: string, flags: ExportFlags) => {
    let given = modelOptionsFrom(flags);
    const ckpt = flags.checkpoint === undefined ? undefined : readCheckpoint(flags.checkpoint);
    const trained = ckpt && flags.checkpoint !== undefined ? trainedAs(ckpt.metadata, flags.checkpoint) : undefined;
    if (trained) {
      const asked = findModel(name).name;
      if (trained.model !== asked) throw new UsageError(`${flags.checkpoint} is a ${trained.model} checkpoint, not ${asked}`);
      // The training options are the defaults here; flags given on this command line win.
      given = { ...trained.options, ...given, aux: false };
    }
    const built = buildModel(name, given);
    const params = inferenceParams(built);
    let weights: Map<string, Float32Array>;
    if (ckpt && flags.checkpoint !== undefined) {
      const loaded = checkpointWeights(params, ckpt, flags.checkpoint);
      weights = loaded.weights;
      if (loaded.ignored.length) {
        process.stderr.write(`note: left out ${loaded.ignored.length} tensors of ${flags.checkpoint} that are not parameters of the inference graph (optimizer state, auxiliary heads)\n`);
      }
    } else {
      weights = initParams(params, flags.seed);
    }
    const bytes = exportInferenceModel(built, weights, { opset: flags.opset });
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

function readCheckpoint(file: string): Safetensors {
  try {
    return loadSafetensors(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') throw new UsageError(`cannot read --checkpoint ${file}: ${code}`);
    throw e;
  }
}
