/**
 * `ilsvrc visualize <what> <model> …`: what a trained network learned, as PNG files (ZFNet's
 * pictures), from a checkpoint or an exported ONNX model. `--json` prints the numbers behind each
 * picture as one JSON object. Layers are named as `summary` names them.
 */
import { dirname } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { openModelData, subset, type Dataset } from '../data/index.js';
import { UsageError } from '../util/errors.js';
import { fileInFolder, ensureDir, writeFileAtomic } from '../util/fsx.js';
import { activations, renderMaps } from '../viz/activations.js';
import type { Mode } from '../viz/backward.js';
import { convOf, filterStats, filterTiles } from '../viz/filters.js';
import { loadImage } from '../viz/images.js';
import { openNetwork, type Network } from '../viz/network.js';
import { defaultOcclusion, occlusion, renderOcclusion } from '../viz/occlusion.js';
import { projectImage, renderProjections } from '../viz/project.js';
import { topActivations } from '../viz/top.js';
import { gridRaster, toPng } from '../plot/image.js';
import { choice, count, countOrZero, positiveFloat } from './options.js';
import { requireMemory } from '../util/budget.js';
import { MAX_COUNT, requireBatchMemory, requireThreads } from '../util/limits.js';
import { outputFloats } from '../train/steps-per-run.js';
import { StopSignal, stopOnSignals } from '../util/stop.js';
import { Progress } from './progress.js';
import { classIndex } from '../trained/class-names.js';

interface Common {
  out?: string;
  json?: boolean;
  threads?: number;
  layer?: string;
  labels?: string;
}

/** "3", "0,4,7" or "0-3" → channel numbers. */
function channelList(value: string): number[] {
  const out: number[] = [];
  for (const part of value.split(',').map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new InvalidArgumentError(`Expected channel numbers like 3, 0,4,7 or 0-3 but received ${JSON.stringify(value)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b >= MAX_COUNT || out.length + b - a >= MAX_COUNT) {
      const what = `channel numbers below ${MAX_COUNT}, at most ${MAX_COUNT} of them,`;
      throw new InvalidArgumentError(`Expected ${what} but received ${JSON.stringify(value)}`);
    }
    if (b < a) throw new InvalidArgumentError(`Expected a rising range like 0-3 but received ${JSON.stringify(part)}`);
    for (let c = a; c <= b; c++) out.push(c);
  }
  return out;
}

function common(cmd: Command, what: string): Command {
  return cmd
    .argument('<model>', 'a training checkpoint (.safetensors) or an .onnx file exported by ilsvrc')
    .option('-o, --out <file>', `PNG to write (default ${what}-<layer>.png; in a folder: that name)`)
    .option('--json', 'print the numbers behind the picture as one JSON object')
    .option('--labels <file>', 'class names, one per line, for a model that carries none')
    .addOption(new Option('--threads <n>', 'ORT intra-op threads (0: all cores)').argParser(countOrZero).default(0));
}

async function network(file: string, f: Common): Promise<Network> {
  if (f.threads) requireThreads('--threads', f.threads);
  const net = await openNetwork(file, f.labels);
  if (f.threads) net.threads = f.threads;
  return net;
}

/**
 * Refuses a --batch of images through the network (forward, and with `backward` the projection's
 * pass back: about three times the forward outputs) that does not fit the memory budget.
 */
function requireImages(net: Network, flag: string, n: number, what: string, backward: boolean): void {
  const image = net.channels * net.inputSize ** 2;
  requireBatchMemory(flag, n, 4 * (image + (backward ? 3 : 1) * outputFloats(net.build(1).graph)), what);
}

function write(png: Buffer, file: string): void {
  ensureDir(dirname(file), '--out');
  writeFileAtomic(file, png);
}

function outFile(f: Common, what: string, layer: string): string {
  const name = `${what}-${layer.replace(/[^\w.-]+/g, '_')}.png`;
  return f.out === undefined ? name : fileInFolder(f.out, name);
}

function report(f: Common, file: string, json: object, lines: string[]): void {
  if (f.json) process.stdout.write(JSON.stringify({ png: file, ...json }) + '\n');
  else process.stdout.write([...lines, `wrote ${file}`].join('\n') + '\n');
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function filtersCommand(): Command {
  return common(
    new Command('filters').description('kernels of a conv layer (first layer in RGB) and per-filter norm, dead share, frequency bands'),
    'filters',
  )
    .option('--layer <name>', 'conv layer (default: the first)')
    .addOption(new Option('--max-filters <n>', 'filters drawn (statistics cover all)').argParser(count).default(96))
    .addOption(new Option('--max-inputs <n>', 'input channels drawn per filter of a deeper layer').argParser(count).default(16))
    .addOption(new Option('--dead <x>', 'dead: norm below this share of the median norm').argParser(positiveFloat).default(0.1))
    .action(async (file: string, f: Common & { maxFilters: number; maxInputs: number; dead: number }) => {
      const net = await network(file, f);
      const ng = net.build(1);
      const cw = convOf(net, ng, f.layer);
      const name = cw.weight.name ?? '';
      const w = net.weights.get(name);
      if (!w) throw new UsageError(`Expected weights for ${name} in ${file} but found none`);
      const shape = cw.weight.shape;
      const stats = filterStats(w, shape, f.dead);
      const rgb = cw.first && shape[1] === 3;
      const { tiles, cols } = filterTiles(w, shape, {
        rgb,
        maxFilters: rgb ? f.maxFilters : Math.min(f.maxFilters, 32),
        maxInputs: f.maxInputs,
      });
      const k = Math.max(shape[2] ?? 1, shape[3] ?? 1);
      const g = gridRaster(tiles, { normalize: 'per-tile', cols, pad: 1, scale: Math.max(1, Math.round(24 / k)) });
      const out = outFile(f, 'filters', cw.layer);
      write(await toPng(g.rgb, g.width, g.height), out);
      report(f, out, { layer: cw.layer, shape, rgb, grid: { width: g.width, height: g.height, tiles: tiles.length, cols }, ...stats }, [
        `${net.name} ${cw.layer}: ${shape.join('×')} (${rgb ? 'RGB' : 'per input channel'} tiles)`,
        `  median norm ${stats.medianNorm.toPrecision(4)}; dead (norm < ${f.dead} × median) ${pct(stats.deadFraction)}`,
        `  spectral energy: low ${pct(stats.mean.low)}, mid ${pct(stats.mean.mid)}, high ${pct(stats.mean.high)}`,
      ]);
    });
}

function activationsCommand(): Command {
  return common(
    new Command('activations').description('feature maps of a layer for an image: the top-k channels by mean activation'),
    'activations',
  )
    .argument('<image>', 'an image file (centre-cropped to the input size)')
    .requiredOption('--layer <name>', 'layer with feature maps (see `ilsvrc summary`)')
    .addOption(new Option('--top <k>', 'channels shown').argParser(count).default(16))
    .addOption(new Option('--normalize <mode>', 'per-tile | global').argParser(choice(['per-tile', 'global'] as const)).default('per-tile'))
    .action(async (file: string, image: string, f: Common & { layer: string; top: number; normalize: 'per-tile' | 'global' }) => {
      const net = await network(file, f);
      const x = await loadImage(image, net);
      const { result, maps } = await activations(net, x, { layer: f.layer, top: f.top });
      const out = outFile(f, 'activations', result.layer);
      write(await renderMaps(maps, f.normalize), out);
      report(f, out, { image, ...result }, [
        `${net.name} ${result.layer}: ${result.shape.join('×')}, ${result.silent} channels silent on this image`,
        `  top channels by mean: ${result.top
          .slice(0, 8)
          .map((t) => `${t.channel} (${t.mean.toPrecision(3)})`)
          .join(', ')}`,
      ]);
    });
}

function projectCommand(name: string, mode: Mode, description: string): Command {
  return common(new Command(name).description(description), name)
    .argument('<image>', 'an image file (centre-cropped to the input size)')
    .option('--layer <name>', mode === 'deconvnet' ? 'layer (default: the last with feature maps)' : "layer, or 'logits' (default)")
    .addOption(new Option('--channel <list>', 'channels to project, e.g. 5 or 0,3 or 0-7 (classes for logits)').argParser(channelList))
    .addOption(
      new Option('--count <n>', 'without --channel: the n strongest channels').argParser(count).default(mode === 'deconvnet' ? 8 : 1),
    )
    .addOption(new Option('--batch <n>', 'projections per run').argParser(count).default(4))
    .action(async (file: string, image: string, f: Common & { channel?: number[]; count: number; batch: number }) => {
      const net = await network(file, f);
      // A run never holds more projections than there are channels to project.
      requireImages(net, '--batch', Math.min(f.batch, f.channel?.length ?? f.count), 'projections per run', true);
      const x = await loadImage(image, net);
      const { result, projections } = await projectImage(net, x, {
        mode,
        ...(f.layer !== undefined ? { layer: f.layer } : {}),
        ...(f.channel ? { channels: f.channel } : {}),
        count: f.count,
        batch: f.batch,
      });
      const out = outFile(f, name, result.layer);
      write(await renderProjections(net, x, mode, projections), out);
      report(f, out, { image, ...result }, [
        `${net.name} ${result.layer} (${mode}): predicted ${result.predicted.class} (${pct(result.predicted.probability)})`,
        ...result.units.map((u) => `  channel ${u.channel} at [${u.position.join(', ')}]: activation ${u.activation.toPrecision(4)}`),
      ]);
    });
}

function topCommand(): Command {
  return common(
    new Command('top').description(
      'for each channel, the dataset images that excite it most, with their deconvnet projections (ZF Fig. 2)',
    ),
    'top',
  )
    .requiredOption('--layer <name>', 'layer with feature maps')
    .addOption(new Option('--channel <list>', 'channels, e.g. 0-3').argParser(channelList).default([0, 1, 2, 3]))
    .addOption(new Option('-k, --k <n>', 'images per channel').argParser(count).default(9))
    .option(
      '--data <spec>',
      "default: the data the model learned from, when its file records it (else 'synthetic'); idx:DIR, cifar:DIR, ilsvrc:DIR or an ImageFolder DIR",
    )
    .addOption(new Option('--split <name>', 'train | val').argParser(choice(['train', 'val'] as const)).default('val'))
    .addOption(new Option('--limit <n>', 'images searched (0: all)').argParser(countOrZero).default(500))
    .addOption(new Option('--batch <n>', 'images per run').argParser(count).default(8))
    .action(
      async (
        file: string,
        f: Common & { layer: string; channel: number[]; k: number; data?: string; split: 'train' | 'val'; limit: number; batch: number },
      ) => {
        const net = await network(file, f);
        requireImages(net, '--batch', f.batch, 'images per run', true);
        let ds: Dataset = (await openModelData(f.data, net.data, { channels: net.channels === 1 ? 1 : 3 }))[f.split];
        // Evenly spaced over the split, so every class is in the sample, not just the first ones.
        if (f.limit && ds.length > f.limit)
          ds = subset(
            ds,
            Array.from({ length: f.limit }, (_, i) => Math.floor((i * ds.length) / f.limit)),
          );
        // The winners' images stay in memory for the picture: each channel's k, at most the images searched.
        const k = Math.min(f.k, ds.length);
        const what = `images kept: ${k} for each of ${f.channel.length} channels`;
        requireBatchMemory('-k', k * f.channel.length, 4 * net.channels * net.inputSize ** 2, what);
        // A stop ends the search within a batch, writing nothing: exit 130 with one line.
        const stop = new StopSignal();
        const disarm = stopOnSignals(stop);
        let found: Awaited<ReturnType<typeof topActivations>>;
        const bar = new Progress({ total: ds.length, label: `top ${f.layer}`, unit: 'img' });
        try {
          const o = {
            layer: f.layer,
            channels: f.channel,
            k: f.k,
            mode: 'deconvnet' as const,
            batch: f.batch,
            onProgress: (n: number) => bar.update(n),
          };
          found = await topActivations(net, ds, o, stop);
          bar.finish();
        } finally {
          disarm();
        }
        const { result, png } = found;
        const out = outFile(f, 'top', result.layer);
        write(png, out);
        report(f, out, result, [
          `${net.name} ${result.layer}: ${result.images} images searched`,
          ...result.channels.map((c) => `  channel ${c.channel}: ${c.hits.map((h) => h.activation.toPrecision(3)).join(' ')}`),
        ]);
      },
    );
}

function occlusionCommand(): Command {
  return common(
    new Command('occlusion').description('slide a grey square: class probability and strongest feature map per position (ZF Fig. 7)'),
    'occlusion',
  )
    .argument('<image>', 'an image file (centre-cropped to the input size)')
    .option('--layer <name>', 'layer of the feature map (default: the last with feature maps)')
    .option('--class <c>', 'class index or name (default: the predicted class)')
    .addOption(new Option('--size <px>', 'side of the grey square (default input/5)').argParser(count))
    .addOption(new Option('--stride <px>', 'step between positions (default size/2)').argParser(count))
    .addOption(new Option('--batch <n>', 'occluded copies per run').argParser(count).default(16))
    .action(async (file: string, image: string, f: Common & { class?: string; size?: number; stride?: number; batch: number }) => {
      const net = await network(file, f);
      const x = await loadImage(image, net);
      const d = defaultOcclusion(net.inputSize);
      const size = f.size ?? d.size;
      const stride = f.stride ?? (f.size === undefined ? d.stride : Math.max(1, Math.round(size / 2)));
      // Four batches of copies go through the probe per run, and every position's copy is made first.
      requireImages(net, '--batch', 4 * f.batch, 'occluded copies per run, 4 × --batch', false);
      const side = Math.ceil(Math.max(0, net.inputSize - size) / stride) + 1;
      const what = `--stride ${stride} with --size ${size} (${side}×${side} occluded copies of the ${net.inputSize} px image)`;
      requireMemory(side ** 2 * 4 * net.channels * net.inputSize ** 2, what, 'a larger --stride');
      const target = f.class === undefined ? undefined : classIndex(f.class, net.classes, '--class');
      const r = await occlusion(net, x, {
        size,
        stride,
        batch: f.batch,
        ...(f.layer !== undefined ? { layer: f.layer } : {}),
        ...(target !== undefined ? { target } : {}),
      });
      const out = outFile(f, 'occlusion', r.layer);
      write(await renderOcclusion(net, x, r), out);
      report(f, out, { image, ...r }, [
        `${net.name}: class ${r.class.name} at ${pct(r.clean)} on the clean image (predicted ${net.classes?.[r.predicted] ?? r.predicted})`,
        `  ${r.starts.length}×${r.starts.length} positions of a ${r.size}px square: lowest ${pct(r.peak.probability)} at top ${r.peak.top}, left ${r.peak.left}`,
        `  strongest ${r.layer} feature map: channel ${r.channel}`,
      ]);
    });
}

export function makeVisualizeCommand(): Command {
  return new Command('visualize')
    .description('see inside a trained network: filters, activations, deconvnet, saliency, guided backprop, top images, occlusion (PNG)')
    .addCommand(filtersCommand())
    .addCommand(activationsCommand())
    .addCommand(projectCommand('deconvnet', 'deconvnet', "project channels' strongest activations to pixels (Zeiler & Fergus deconvnet)"))
    .addCommand(projectCommand('saliency', 'gradient', 'gradient of a class score (or unit) w.r.t. the pixels, max |·| over colour'))
    .addCommand(projectCommand('guided', 'guided', 'guided backpropagation of a class score (or unit)'))
    .addCommand(topCommand())
    .addCommand(occlusionCommand());
}
