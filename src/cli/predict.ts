/** `ilsvrc predict <ckpt|onnx> <images…>`: the top classes of each image, with probabilities. */
import { Command, Option } from 'commander';
import { predict, type Prediction, type PredictOptions } from '../trained/predict.js';
import { addInputOptions, choice, count, inputFlagsFrom } from './options.js';
import { EVAL_RECIPES, EVAL_VIEWS, viewOfCrop, type CropName } from '../data/index.js';
import { StopSignal, stopOnSignals, Stopped } from '../util/stop.js';
import { Progress } from './progress.js';
import type { InputFlags } from '../trained/input.js';

/** The views of one size: each image's crops are one batch (the softmax averaged over them). */
const PREDICT_CROPS = EVAL_RECIPES.filter((v) => !EVAL_VIEWS[v].scaled).map((v) => EVAL_VIEWS[v].crop) as NonNullable<
  PredictOptions['crop']
>[];

function cropHelp(crop: CropName): string {
  const note = EVAL_VIEWS[viewOfCrop(crop)].note;
  return note ? `${crop} (${note})` : crop;
}

interface PredictFlags extends PredictOptions, InputFlags {
  json?: boolean;
}

export function makePredictCommand(): Command {
  const cmd = new Command('predict')
    .description('top classes of images, from a checkpoint or an exported ONNX model')
    .argument(
      '<model>',
      'a training checkpoint (.safetensors), an .onnx file exported by ilsvrc, or an ONNX image classifier from elsewhere',
    )
    .argument('<images...>', 'image files')
    .addOption(new Option('--top <k>', 'classes to show per image').argParser(count).default(5))
    .addOption(
      new Option('--crop <mode>', `${PREDICT_CROPS.map(cropHelp).join(' | ')}; default: as trained`).argParser(choice(PREDICT_CROPS)),
    )
    .option('--json', 'one JSON array of {image, top: [{class, index, probability}]}')
    .option('--labels <file>', 'class names, one per line, for a model that carries none')
    .action(async (file: string, images: string[], f: PredictFlags) => {
      // A stop ends the pass within a batch: what was done is printed, then the one line and exit 130.
      const stop = new StopSignal();
      const disarm = stopOnSignals(stop);
      let preds: Prediction[];
      // More than a batch of images: a bar on stderr (the predictions go to stdout).
      const bar = images.length > 16 ? new Progress({ total: images.length, label: 'predict', unit: 'img' }) : undefined;
      try {
        preds = await predict(file, images, { ...f, input: inputFlagsFrom(f), onProgress: (n) => bar?.update(n) }, stop);
        bar?.finish();
      } finally {
        disarm();
      }
      // More classes than the model has means all of them: said once, not refused.
      const shown = preds[0]?.top.length ?? f.top;
      if (shown < f.top) process.stderr.write(`ilsvrc: note: --top ${f.top} is more than the model's ${shown} classes: showing ${shown}\n`);
      if (f.json) process.stdout.write(JSON.stringify(preds) + '\n');
      else {
        for (const p of preds) {
          process.stdout.write(
            `${p.image}\n${p.top.map((t) => `  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${t.class}`).join('\n')}\n`,
          );
        }
      }
      if (stop.requested && preds.length < images.length) {
        throw new Stopped(`predict stopped by ${stop.reason} after ${preds.length} of ${images.length} images`);
      }
    });
  return addInputOptions(cmd);
}
