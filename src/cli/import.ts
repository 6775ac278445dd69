/** `ilsvrc import <file> [--as <model>] -o ckpt.safetensors`: published weights as a checkpoint. */
import { dirname } from 'node:path';
import { Command } from 'commander';
import { importWeights, saveImported } from '../import/index.js';
import { readLabels } from '../trained/class-names.js';
import { optionFlag, variantOf } from '../zoo/options.js';
import { ensureDir, fileInFolder } from '../util/fsx.js';
import { thousands } from './format.js';
import { addModelOptions, modelOptionsFrom, type ModelFlags } from './options.js';

interface ImportFlags extends ModelFlags {
  as?: string;
  output: string;
  labels?: string;
}

export function makeImportCommand(): Command {
  const cmd = new Command('import')
    .description('published weights (.onnx, .caffemodel, torchvision .safetensors) as an ilsvrc checkpoint')
    .argument('<file>', 'an ONNX model, a Caffe .caffemodel, or a PyTorch state dict in .safetensors')
    .option('--as <model>', "the zoo model the weights belong to (see `ilsvrc models`; default: the one whose layers the file's fit)")
    .requiredOption('-o, --output <file>', 'the checkpoint (.safetensors) to write (in a folder: <model>.safetensors)')
    .option('--labels <file>', 'class names, one per line, in the order of the outputs');
  return addModelOptions(cmd).action(async (file: string, flags: ImportFlags) => {
    const classes = flags.labels === undefined ? undefined : readLabels(flags.labels);
    const r = await importWeights(file, flags.as, modelOptionsFrom(flags), classes ? { classes } : {});
    // Like export's -o: a folder gets the default name inside it.
    const output = fileInFolder(flags.output, `${r.checkpoint.meta.model}.safetensors`);
    ensureDir(dirname(output), '--output');
    saveImported(output, r);
    for (const n of r.notes) process.stderr.write(`note: ${n}\n`);
    const m = r.checkpoint.meta;
    const o = m.modelOptions;
    const variant = variantOf(o)
      .map(([k, v]) => `${optionFlag(k)} ${v}`)
      .join(' ');
    process.stdout.write(
      `wrote ${output}: ${m.model} (${o.inputSize} px, ${o.classes} classes, width ${o.width}${variant ? `, ${variant}` : ''}), ${r.source.layers} weight layers, ${thousands(r.paramCount)} params from ${file} (${r.source.format})\n`,
    );
  });
}
