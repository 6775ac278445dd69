/** `ilsvrc predict <ckpt|onnx> <images…>`: the top classes of each image, with probabilities. */
import { Command, Option } from 'commander';
import { predict, type PredictOptions } from '../train/predict.js';
import { choice, count } from './options.js';

interface PredictFlags extends PredictOptions {
  json?: boolean;
}

export function makePredictCommand(): Command {
  return new Command('predict')
    .description('top classes of images, from a checkpoint or an exported ONNX model')
    .argument('<model>', 'a training checkpoint (.safetensors) or an .onnx file exported by ilsvrc')
    .argument('<images...>', 'image files')
    .addOption(new Option('--top <k>', 'classes to show per image').argParser(count).default(5))
    .addOption(new Option('--crop <mode>', 'center | ten (softmax averaged) | full; default: as trained').argParser(choice(['center', 'ten', 'full'] as const)))
    .option('--json', 'one JSON array of {image, top: [{class, index, probability}]}')
    .action(async (file: string, images: string[], f: PredictFlags) => {
      const preds = await predict(file, images, f);
      // More classes than the model has means all of them: said once, not refused.
      const shown = preds[0]?.top.length ?? f.top;
      if (shown < f.top) process.stderr.write(`ilsvrc: note: --top ${f.top} is more than the model's ${shown} classes: showing ${shown}\n`);
      if (f.json) {
        process.stdout.write(JSON.stringify(preds) + '\n');
        return;
      }
      for (const p of preds) {
        process.stdout.write(`${p.image}\n${p.top.map((t) => `  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${t.class}`).join('\n')}\n`);
      }
    });
}
