/**
 * `ilsvrc visualize <what> <model> …`: what a trained network learned, as PNG files (ZFNet's
 * pictures), from a checkpoint or an exported ONNX model. `--json` prints the numbers behind each
 * picture as one JSON object. Layers are named as `summary` names them.
 */
import { dirname } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { openModelData, subset, type Dataset } from '../data/index.js';
import { expected, UsageError } from '../util/errors.js';
import { fileInFolder, ensureDir, writeFileAtomic } from '../util/fsx.js';
import { activations, renderMaps } from '../viz/activations.js';
import type { Mode } from '../viz/backward.js';
import { caption, className, percent as pct } from '../viz/caption.js';
import type { FigureLayout } from '../plot/figure.js';
import { convOf, FILTER_DEFAULTS as FILTERS, filterStats, renderFilters, type FilterStats } from '../viz/filters.js';
import { loadImage } from '../viz/images.js';
import { openNetwork, type Network } from '../viz/network.js';
import { defaultOcclusion, occlusion, renderOcclusion, type OcclusionResult } from '../viz/occlusion.js';
import { projectImage, renderProjections, unitName, type ProjectResult } from '../viz/project.js';
import { topActivations, type TopResult } from '../viz/top.js';
import { choice, count, countOrZero, positiveFloat, requireCounts } from './options.js';
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
}

/** What every picture of `visualize` takes: the flags every `ilsvrc visualize` command has. */
export interface ViewOptions {
  /** PNG to write, or a folder to write it in (default: `<kind>-<layer>.png` in the working directory). */
  out?: string;
  /** ORT intra-op threads (default: all cores). */
  threads?: number;
  /** Class names, one per line, for a model that carries none. */
  labels?: string;
}

/** `visualize('filters', …)`: kernels of a conv layer and their statistics. */
export interface FiltersViewOptions extends ViewOptions {
  /** A conv layer (default: the first). */
  layer?: string;
  /** Filters drawn (the statistics cover all); default 96. */
  maxFilters?: number;
  /** Input channels drawn per filter of a deeper layer; default 16. */
  maxInputs?: number;
  /** Dead: norm below this share of the median norm; default 0.1. */
  dead?: number;
}

/** `visualize('activations', …)`: the top-k feature maps of a layer for an image. */
export interface ActivationsViewOptions extends ViewOptions {
  image: string;
  layer: string;
  /** Channels shown; default 16. */
  top?: number;
  normalize?: 'per-tile' | 'global';
}

/** `visualize('deconvnet' | 'saliency' | 'guided', …)`: projections of units back to the pixels. */
export interface ProjectionViewOptions extends ViewOptions {
  image: string;
  /** A layer, or 'logits' (default: logits for saliency and guided, the last layer with feature maps for deconvnet). */
  layer?: string;
  /** Channels (classes for logits) to project; default: the `count` strongest. */
  channels?: readonly number[];
  /** Default 8 for deconvnet, 1 otherwise. */
  count?: number;
  /** Projections per run; default 4. */
  batch?: number;
}

/** `visualize('top', …)`: for each channel, the dataset images that excite it most. */
export interface TopViewOptions extends ViewOptions {
  layer: string;
  /** Default [0, 1, 2, 3]. */
  channels?: readonly number[];
  /** Images per channel; default 9. */
  k?: number;
  /** Default: the data the model learned from, when its file records it (else 'synthetic'). */
  data?: string;
  split?: 'train' | 'val';
  /** Images searched, evenly spaced over the split (0: all); default 500. */
  limit?: number;
  /** Images per run; default 8. */
  batch?: number;
  /** Called after each batch with the images searched so far and their total. */
  onProgress?: (done: number, total: number) => void;
}

/** `visualize('occlusion', …)`: a grey square slid over the image. */
export interface OcclusionViewOptions extends ViewOptions {
  image: string;
  layer?: string;
  /** A class index or name (default: the predicted class). */
  class?: number | string;
  /** Side of the square in pixels (default: a fifth of the input). */
  size?: number;
  /** Step between positions (default: half the size). */
  stride?: number;
  /** Occluded copies per run; default 16. */
  batch?: number;
}

/** The options of each picture `visualize` draws, by the name of its `ilsvrc visualize` command. */
export interface VisualizeOptions {
  filters: FiltersViewOptions;
  activations: ActivationsViewOptions;
  deconvnet: ProjectionViewOptions;
  saliency: ProjectionViewOptions;
  guided: ProjectionViewOptions;
  top: TopViewOptions;
  occlusion: OcclusionViewOptions;
}

/** The numbers behind each picture (what `--json` prints besides the file). */
export interface VisualizeDetails {
  filters: {
    layer: string;
    shape: readonly number[];
    rgb: boolean;
    layout: FigureLayout;
  } & FilterStats;
  activations: { image: string } & Awaited<ReturnType<typeof activations>>['result'];
  deconvnet: { image: string } & ProjectResult;
  saliency: { image: string } & ProjectResult;
  guided: { image: string } & ProjectResult;
  top: TopResult;
  occlusion: { image: string } & OcclusionResult;
}

export type VisualizeKind = keyof VisualizeOptions;

/** A picture: its PNG (written to `file`), the layer it shows, its numbers and the command's lines about it. */
export interface Visualization<K extends VisualizeKind = VisualizeKind> {
  file: string;
  png: Buffer;
  details: VisualizeDetails[K];
  lines: string[];
}

/** A picture before it is written: the file name is known once the layer is. */
interface Picture<K extends VisualizeKind> {
  layer: string;
  png: Buffer;
  details: VisualizeDetails[K];
  lines: string[];
}

/** What the command adds to a search over a dataset: stopping on signals, a progress bar. */
interface Hooks {
  stop?: StopSignal;
  /** Starts listening for a stop; returns the function that stops listening. */
  arm?: () => () => void;
  begin?: (total: number) => void;
  end?: () => void;
}

type Draw<K extends VisualizeKind> = (file: string, o: VisualizeOptions[K], hooks: Hooks) => Promise<Picture<K>>;

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

async function network(file: string, f: ViewOptions): Promise<Network> {
  requireCounts({ '--threads': f.threads }, ['--threads']);
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

function outFile(f: ViewOptions, what: string, layer: string): string {
  const name = `${what}-${layer.replace(/[^\w.-]+/g, '_')}.png`;
  return f.out === undefined ? name : fileInFolder(f.out, name);
}

/**
 * `ilsvrc visualize <kind>` from code: draws the picture of a checkpoint or .onnx file, writes the
 * PNG where `out` says (as the command does) and returns it with the numbers behind it.
 */
export async function visualize<K extends VisualizeKind>(kind: K, model: string, options: VisualizeOptions[K]): Promise<Visualization<K>> {
  return show(kind, model, options, {});
}

async function show<K extends VisualizeKind>(kind: K, model: string, o: VisualizeOptions[K], hooks: Hooks): Promise<Visualization<K>> {
  const draw: Draw<K> = DRAW[kind];
  const p = await draw(model, o, hooks);
  const file = outFile(o, kind, p.layer);
  write(p.png, file);
  return { file, png: p.png, details: p.details, lines: p.lines };
}

/** The command's action for a picture: flags in, the picture drawn, written and reported. */
async function command<K extends VisualizeKind>(
  kind: K,
  model: string,
  o: VisualizeOptions[K],
  f: Common,
  hooks: Hooks = {},
): Promise<void> {
  const v = await show(kind, model, o, hooks);
  if (f.json) process.stdout.write(JSON.stringify({ png: v.file, ...v.details }) + '\n');
  else process.stdout.write([...v.lines, `wrote ${v.file}`].join('\n') + '\n');
}

async function drawFilters(file: string, o: FiltersViewOptions): Promise<Picture<'filters'>> {
  const { maxFilters, maxInputs, dead } = { ...FILTERS, ...o };
  requireCounts({ '--max-filters': maxFilters, '--max-inputs': maxInputs });
  if (!(dead > 0 && Number.isFinite(dead))) throw expected('a positive number', '--dead', dead);
  const net = await network(file, o);
  const ng = net.build(1);
  const cw = convOf(net, ng, o.layer);
  const name = cw.weight.name ?? '';
  const w = net.weights.get(name);
  if (!w) throw new UsageError(`Expected weights for ${name} in ${file} but found none`);
  const shape = cw.weight.shape;
  const stats = filterStats(w, shape, dead);
  const { png, layout, rgb } = await renderFilters(net, cw, w, stats, { maxFilters, maxInputs });
  return {
    layer: cw.layer,
    png,
    details: { layer: cw.layer, shape, rgb, layout, ...stats },
    lines: [
      `${net.name} ${cw.layer}: ${shape.join('×')} (${rgb ? 'RGB' : 'per input channel'} tiles)`,
      `  median norm ${stats.medianNorm.toPrecision(4)}; dead (norm < ${dead} × median) ${pct(stats.deadFraction)}`,
      `  spectral energy: low ${pct(stats.mean.low)}, mid ${pct(stats.mean.mid)}, high ${pct(stats.mean.high)}`,
    ],
  };
}

function filtersCommand(): Command {
  return common(
    new Command('filters').description('kernels of a conv layer (first layer in RGB) and per-filter norm, dead share, frequency bands'),
    'filters',
  )
    .option('--layer <name>', 'conv layer (default: the first)')
    .addOption(new Option('--max-filters <n>', 'filters drawn (statistics cover all)').argParser(count).default(FILTERS.maxFilters))
    .addOption(
      new Option('--max-inputs <n>', 'input channels drawn per filter of a deeper layer').argParser(count).default(FILTERS.maxInputs),
    )
    .addOption(new Option('--dead <x>', 'dead: norm below this share of the median norm').argParser(positiveFloat).default(FILTERS.dead))
    .action((file: string, f: Common & { maxFilters: number; maxInputs: number; dead: number }) => command('filters', file, f, f));
}

async function drawActivations(file: string, o: ActivationsViewOptions): Promise<Picture<'activations'>> {
  requireCounts({ '--top': o.top });
  const net = await network(file, o);
  const x = await loadImage(o.image, net);
  const { result, maps } = await activations(net, x, { layer: o.layer, top: o.top ?? 16 });
  return {
    layer: result.layer,
    png: await renderMaps(net, result, maps, o.normalize ?? 'per-tile', o.image),
    details: { image: o.image, ...result },
    lines: [
      caption(net, { layer: result.layer, mode: 'activations', image: o.image, class: { ...result.predicted, what: 'predicted' } }),
      `  ${result.shape.join('×')}, ${result.silent} channels silent on this image`,
      `  top channels by mean: ${result.top
        .slice(0, 8)
        .map((t) => `${t.channel} (${t.mean.toPrecision(3)})`)
        .join(', ')}`,
    ],
  };
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
    .action((file: string, image: string, f: Common & { layer: string; top: number; normalize: 'per-tile' | 'global' }) =>
      command('activations', file, { ...f, image }, f),
    );
}

const PROJECTION_MODES = { deconvnet: 'deconvnet', saliency: 'gradient', guided: 'guided' } as const;
type ProjectionKind = keyof typeof PROJECTION_MODES;

function drawProjection<K extends ProjectionKind>(kind: K): Draw<K> {
  const mode: Mode = PROJECTION_MODES[kind];
  return async (file, o) => {
    const net = await network(file, o);
    const n = o.count ?? (mode === 'deconvnet' ? 8 : 1);
    const batch = o.batch ?? 4;
    requireCounts({ '--count': n, '--batch': batch, '--channel': o.channels }, ['--channel']);
    // A run never holds more projections than there are channels to project.
    requireImages(net, '--batch', Math.min(batch, o.channels?.length ?? n), 'projections per run', true);
    const x = await loadImage(o.image, net);
    const { result, projections } = await projectImage(net, x, {
      mode,
      ...(o.layer !== undefined ? { layer: o.layer } : {}),
      ...(o.channels ? { channels: o.channels } : {}),
      count: n,
      batch,
    });
    const what = result.layer === 'logits' ? 'score' : 'activation';
    return {
      layer: result.layer,
      png: await renderProjections(net, x, result, projections, o.image),
      details: { image: o.image, ...result },
      lines: [
        caption(net, { layer: result.layer, mode: kind, image: o.image, class: { ...result.predicted, what: 'predicted' } }),
        ...result.units.map((u) => `  ${unitName(net, result, u)}: ${what} ${u.activation.toPrecision(4)}`),
      ],
    };
  };
}

function projectCommand(name: ProjectionKind, description: string): Command {
  const mode = PROJECTION_MODES[name];
  return common(new Command(name).description(description), name)
    .argument('<image>', 'an image file (centre-cropped to the input size)')
    .option('--layer <name>', mode === 'deconvnet' ? 'layer (default: the last with feature maps)' : "layer, or 'logits' (default)")
    .addOption(new Option('--channel <list>', 'channels to project, e.g. 5 or 0,3 or 0-7 (classes for logits)').argParser(channelList))
    .addOption(
      new Option('--count <n>', 'without --channel: the n strongest channels').argParser(count).default(mode === 'deconvnet' ? 8 : 1),
    )
    .addOption(new Option('--batch <n>', 'projections per run').argParser(count).default(4))
    .action((file: string, image: string, f: Common & { channel?: number[]; count: number; batch: number }) =>
      command(name, file, { ...f, image, ...(f.channel ? { channels: f.channel } : {}) }, f),
    );
}

const TOP = { channels: [0, 1, 2, 3], k: 9, split: 'val' as const, limit: 500, batch: 8 };

async function drawTop(file: string, o: TopViewOptions, hooks: Hooks): Promise<Picture<'top'>> {
  const { channels, k: perChannel, split, limit, batch } = { ...TOP, ...o };
  requireCounts({ '-k': perChannel, '--limit': limit, '--batch': batch, '--channel': channels }, ['--limit', '--channel']);
  const net = await network(file, o);
  requireImages(net, '--batch', batch, 'images per run', true);
  let ds: Dataset = (await openModelData(o.data, net.data, { channels: net.channels === 1 ? 1 : 3 }))[split];
  // Evenly spaced over the split, so every class is in the sample, not just the first ones.
  if (limit && ds.length > limit)
    ds = subset(
      ds,
      Array.from({ length: limit }, (_, i) => Math.floor((i * ds.length) / limit)),
    );
  // The winners' images stay in memory for the picture: each channel's k, at most the images searched.
  const k = Math.min(perChannel, ds.length);
  const what = `images kept: ${k} for each of ${channels.length} channels`;
  requireBatchMemory('-k', k * channels.length, 4 * net.channels * net.inputSize ** 2, what);
  const total = ds.length;
  const onProgress = o.onProgress;
  const t = { layer: o.layer, channels, k: perChannel, mode: 'deconvnet' as const, batch };
  const disarm = hooks.arm?.();
  let found: Awaited<ReturnType<typeof topActivations>>;
  hooks.begin?.(total);
  try {
    found = await topActivations(net, ds, { ...t, ...(onProgress ? { onProgress: (n: number) => onProgress(n, total) } : {}) }, hooks.stop);
    hooks.end?.();
  } finally {
    disarm?.();
  }
  const { result, png } = found;
  return {
    layer: result.layer,
    png,
    details: result,
    lines: [
      `${net.name} ${result.layer}: ${result.images} images searched`,
      ...result.channels.map((c) => `  channel ${c.channel}: ${c.hits.map((h) => h.activation.toPrecision(3)).join(' ')}`),
    ],
  };
}

function topCommand(): Command {
  return common(
    new Command('top').description(
      'for each channel, the dataset images that excite it most, with their deconvnet projections (ZF Fig. 2)',
    ),
    'top',
  )
    .requiredOption('--layer <name>', 'layer with feature maps')
    .addOption(new Option('--channel <list>', 'channels, e.g. 0-3').argParser(channelList).default([...TOP.channels]))
    .addOption(new Option('-k, --k <n>', 'images per channel').argParser(count).default(TOP.k))
    .option(
      '--data <spec>',
      "default: the data the model learned from, when its file records it (else 'synthetic'); idx:DIR, cifar:DIR, ilsvrc:DIR or an ImageFolder DIR",
    )
    .addOption(new Option('--split <name>', 'train | val').argParser(choice(['train', 'val'] as const)).default(TOP.split))
    .addOption(new Option('--limit <n>', 'images searched (0: all)').argParser(countOrZero).default(TOP.limit))
    .addOption(new Option('--batch <n>', 'images per run').argParser(count).default(TOP.batch))
    .action(
      async (
        file: string,
        f: Common & { layer: string; channel: number[]; k: number; data?: string; split: 'train' | 'val'; limit: number; batch: number },
      ) => {
        // A stop ends the search within a batch, writing nothing: exit 130 with one line.
        const stop = new StopSignal();
        let bar: Progress | undefined;
        const hooks: Hooks = {
          stop,
          arm: () => stopOnSignals(stop),
          begin: (total) => (bar = new Progress({ total, label: `top ${f.layer}`, unit: 'img' })),
          end: () => bar?.finish(),
        };
        await command('top', file, { ...f, channels: f.channel, onProgress: (n: number) => bar?.update(n) }, f, hooks);
      },
    );
}

async function drawOcclusion(file: string, o: OcclusionViewOptions): Promise<Picture<'occlusion'>> {
  const net = await network(file, o);
  const batch = o.batch ?? 16;
  requireCounts({ '--batch': batch, '--size': o.size, '--stride': o.stride });
  const x = await loadImage(o.image, net);
  const d = defaultOcclusion(net.inputSize);
  const size = o.size ?? d.size;
  const stride = o.stride ?? (o.size === undefined ? d.stride : Math.max(1, Math.round(size / 2)));
  // Four batches of copies go through the probe per run, and every position's copy is made first.
  requireImages(net, '--batch', 4 * batch, 'occluded copies per run, 4 × --batch', false);
  const side = Math.ceil(Math.max(0, net.inputSize - size) / stride) + 1;
  const what = `--stride ${stride} with --size ${size} (${side}×${side} occluded copies of the ${net.inputSize} px image)`;
  requireMemory(side ** 2 * 4 * net.channels * net.inputSize ** 2, what, 'a larger --stride');
  const target = typeof o.class === 'number' || o.class === undefined ? o.class : classIndex(o.class, net.classes, '--class');
  const r = await occlusion(net, x, {
    size,
    stride,
    batch,
    ...(o.layer !== undefined ? { layer: o.layer } : {}),
    ...(target !== undefined ? { target } : {}),
  });
  return {
    layer: r.layer,
    png: await renderOcclusion(net, x, r, o.image),
    details: { image: o.image, ...r },
    lines: [
      `${net.name}: class ${r.class.name} at ${pct(r.clean)} on the clean image (predicted ${className(net, r.predicted)})`,
      `  ${r.starts.length}×${r.starts.length} positions of a ${r.size}px square: lowest ${pct(r.peak.probability)} at top ${r.peak.top}, left ${r.peak.left}`,
      `  strongest ${r.layer} feature map: channel ${r.channel}`,
    ],
  };
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
    .action((file: string, image: string, f: Common & { class?: string; size?: number; stride?: number; batch: number }) =>
      command('occlusion', file, { ...f, image }, f),
    );
}

/** Each picture's drawing, by its command's name. */
const DRAW: { [K in VisualizeKind]: Draw<K> } = {
  filters: drawFilters,
  activations: drawActivations,
  deconvnet: drawProjection('deconvnet'),
  saliency: drawProjection('saliency'),
  guided: drawProjection('guided'),
  top: drawTop,
  occlusion: drawOcclusion,
};

export function makeVisualizeCommand(): Command {
  return new Command('visualize')
    .description('see inside a trained network: filters, activations, deconvnet, saliency, guided backprop, top images, occlusion (PNG)')
    .addCommand(filtersCommand())
    .addCommand(activationsCommand())
    .addCommand(projectCommand('deconvnet', "project channels' strongest activations to pixels (Zeiler & Fergus deconvnet)"))
    .addCommand(projectCommand('saliency', 'gradient of a class score (or unit) w.r.t. the pixels, max |·| over colour'))
    .addCommand(projectCommand('guided', 'guided backpropagation of a class score (or unit)'))
    .addCommand(topCommand())
    .addCommand(occlusionCommand());
}
