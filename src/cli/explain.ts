/**
 * `ilsvrc explain <topic>`: the design arguments of the ILSVRC papers as numbers measured on graphs
 * built here — the classifier head (FC vs global average pooling), stacked 3×3 convolutions, the
 * inception module's 1×1 reductions, and ZFNet's changes to AlexNet's first layers.
 */
import { Command } from 'commander';
import { findModel, modelOptions, type ModelOptions } from '../zoo/index.js';
import { INCEPTION, inception } from '../zoo/googlenet.js';
import { Graph, type Value } from '../graph/graph.js';
import { conv2d, gap, linear } from '../nn/layers.js';
import { summarize, type LayerRow, type Summary } from '../graph/summary.js';
import { expected } from '../util/errors.js';
import { gmacs, shape, table, thousands } from './format.js';
import { summarizeModel } from './summary.js';

/** Weights (not biases), biases, MACs, ReLUs, and the output's receptive field of a small graph. */
interface Measured {
  weights: number;
  biases: number;
  params: number;
  macs: number;
  relus: number;
  output: number[];
  rf: number;
}

/** Builds a one-input graph with `body`, declares its output and measures it. */
function measure(input: readonly number[], body: (x: Value) => Value): Measured & { summary: Summary } {
  const g = new Graph('explain');
  const x = g.input('input', 'float32', [1, ...input]);
  const y = g.output(body(x), 'output');
  const summary = summarize(g, { detail: true });
  const weights = g.params.filter((p) => !p.isBias).reduce((n, p) => n + p.value.size, 0);
  const biases = g.params.filter((p) => p.isBias).reduce((n, p) => n + p.value.size, 0);
  const last = summary.layers[summary.layers.length - 1];
  return {
    weights,
    biases,
    params: summary.params,
    macs: summary.macs,
    relus: g.nodes.filter((n) => n.op === 'Relu').length,
    output: y.shape.slice(1),
    rf: last?.rf ?? 0,
    summary,
  };
}

const XAVIER = { kind: 'xavier' } as const;

function plain({ summary: _s, ...m }: Measured & { summary: Summary }): Measured {
  return m;
}

// ---- gap-vs-fc -------------------------------------------------------------------------------

export function gapVsFc() {
  const input = [1024, 7, 7] as const;
  const fc = measure(input, (x) => linear(x, 'fc', { out: 1024, init: XAVIER }));
  const pooled = measure(input, (x) => gap(x, 'gap'));
  const fcShare = (model: string) => {
    const s = summarizeModel(model);
    const fcParams = s.layers.filter((l) => l.ops.includes('Gemm')).reduce((n, l) => n + l.params, 0);
    return { model: s.model, params: s.params, fcParams, share: fcParams / s.params };
  };
  return { input: [...input], fc: plain(fc), gap: plain(pooled), zoo: ['vgg-d', 'alexnet', 'googlenet'].map(fcShare) };
}

function gapVsFcText(f: ReturnType<typeof gapVsFc>): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  return (
    `A head on GoogLeNet's last feature map (${shape(f.input)}):\n` +
    `  fully connected to 1024 units: ${thousands(f.fc.weights)} weights (7·7·1024·1024 ≈ ${(f.fc.weights / 1e6).toFixed(1)} M) ` +
    `+ ${thousands(f.fc.biases)} biases, ${thousands(f.fc.macs)} MACs per image\n` +
    `  global average pooling:        ${thousands(f.gap.params)} weights, output ${shape(f.gap.output)}\n` +
    `GAP (from Network in Network, used by GoogLeNet) averages each map to one number: nothing to learn,\n` +
    `nothing to overfit, and any input size works. Where the weights sit in the zoo (Gemm layers):\n` +
    table(
      ['model', 'params', 'in FC layers', 'share'],
      f.zoo.map((z) => [z.model, thousands(z.params), thousands(z.fcParams), pct(z.share)]),
      1,
    )
  );
}

// ---- stacking ----------------------------------------------------------------------------------

/** n stacked 3×3 convs vs one (2n+1)×(2n+1) conv, C channels in and out, same-size maps. */
export function stacking(channels = 64, size = 56) {
  const pair = (n: number) => {
    const k = 2 * n + 1;
    const stacked = measure([channels, size, size], (x) => {
      let h = x;
      for (let i = 1; i <= n; i++) h = conv2d(h, `conv3x3_${i}`, { out: channels, k: 3, pad: 1, init: XAVIER });
      return h;
    });
    const single = measure([channels, size, size], (x) => conv2d(x, `conv${k}x${k}`, { out: channels, k, pad: n, init: XAVIER }));
    const c2 = channels * channels;
    return {
      layers: n,
      kernel: k,
      stacked: { ...plain(stacked), perC2: stacked.weights / c2 },
      single: { ...plain(single), perC2: single.weights / c2 },
    };
  };
  return { channels, size, pairs: [pair(2), pair(3)] };
}

function stackingText(f: ReturnType<typeof stacking>): string {
  const rows = f.pairs.flatMap((p) => [
    [
      `${p.layers} × 3×3`,
      String(p.stacked.rf),
      `${p.stacked.perC2}C²`,
      thousands(p.stacked.weights),
      thousands(p.stacked.macs),
      String(p.stacked.relus),
    ],
    [
      `1 × ${p.kernel}×${p.kernel}`,
      String(p.single.rf),
      `${p.single.perC2}C²`,
      thousands(p.single.weights),
      thousands(p.single.macs),
      String(p.single.relus),
    ],
  ]);
  const three = f.pairs[1];
  const ratio = three ? (three.stacked.weights / three.single.weights).toFixed(2) : '?';
  return (
    `Stacked 3×3 convolutions vs one large kernel, C = ${f.channels} channels on ${f.size}×${f.size} maps (VGG's argument):\n` +
    table(['design', 'RF', 'weights', `weights (C=${f.channels})`, 'MACs', 'ReLUs'], rows, 1) +
    `Same receptive field, ${ratio}× the weights and MACs of the single kernel, and a non-linearity after\n` +
    `every layer instead of one: a deeper, more discriminative function for less.\n`
  );
}

// ---- inception -------------------------------------------------------------------------------

export function inceptionReduction() {
  const o: ModelOptions = modelOptions(findModel('googlenet'));
  const input = [192, 28, 28] as const;
  const row = INCEPTION['3a'];
  if (!row) throw new Error('inception row 3a is missing');
  const build = (naive: boolean) => {
    const m = measure(input, (x) => inception(x, 'inception_3a', row, o, naive));
    const branches = m.summary.layers
      .filter((l) => l.name !== 'inception_3a')
      .map((l) => ({ name: l.name.replace(/^inception_3a\//, ''), output: l.output, params: l.params, macs: l.macs }));
    return { ...plain(m), channels: m.output[0] ?? 0, branches };
  };
  return { input: [...input], naive: build(true), reduced: build(false) };
}

function inceptionText(f: ReturnType<typeof inceptionReduction>): string {
  const { naive: n, reduced: r } = f;
  const branches = (b: typeof n.branches) => b.map((x) => [x.name, shape(x.output), thousands(x.params), thousands(x.macs)]);
  const head = ['branch', 'output', 'params', 'MACs'];
  return (
    `Inception 3a on a ${shape(f.input)} input (GoogLeNet's Table 1 row: 64, 96→128, 16→32, pool→32):\n` +
    `  naive   (1×1, 3×3, 5×5 and the pooled input side by side): ${thousands(n.params)} params, ${gmacs(n.macs)} GMACs, ${n.channels} channels out\n` +
    `  reduced (1×1 convs before 3×3 and 5×5, after the pool):   ${thousands(r.params)} params, ${gmacs(r.macs)} GMACs, ${r.channels} channels out\n` +
    `The 1×1 reductions cut the parameters by ${(100 * (1 - r.params / n.params)).toFixed(0)} % and the MACs by ` +
    `${(100 * (1 - r.macs / n.macs)).toFixed(0)} %. The naive module\n` +
    `also passes all ${f.input[0]} pooled channels on, so its width only grows from block to block. Naive:\n` +
    table(head, branches(n.branches), 1) +
    `Reduced:\n` +
    table(head, branches(r.branches), 1)
  );
}

// ---- alexnet-vs-zfnet --------------------------------------------------------------------------

export function alexnetVsZfnet() {
  const pick = (l: LayerRow) => ({ name: l.name, kernel: l.kernel, stride: l.stride, output: l.output, rf: l.rf, jump: l.jump });
  const early = (model: string) => {
    const s = summarizeModel(model);
    const layers = s.layers.filter((l) => /^(conv[12]|pool[12])$/.test(l.name)).map(pick);
    return { model: s.model, input: s.input, params: s.params, macs: s.macs, layers };
  };
  return { alexnet: early('alexnet'), zfnet: early('zfnet') };
}

function alexnetVsZfnetText(f: ReturnType<typeof alexnetVsZfnet>): string {
  const names = f.alexnet.layers.map((l) => l.name);
  const cell = (l: ReturnType<typeof alexnetVsZfnet>['zfnet']['layers'][number] | undefined) =>
    l ? [`${l.kernel}×${l.kernel}/${l.stride}`, shape(l.output), `${l.rf}/${l.jump}`] : ['', '', ''];
  const rows = names.map((n) => [
    n,
    ...cell(f.alexnet.layers.find((l) => l.name === n)),
    ...cell(f.zfnet.layers.find((l) => l.name === n)),
  ]);
  return (
    `ZFNet is AlexNet on one GPU with its first layers changed after visualising them: conv1 11×11 stride 4\n` +
    `became 7×7 stride 2 (AlexNet's conv1 filters were mostly very high or very low frequency, and the coarse\n` +
    `stride aliased conv2's input), and conv2 got stride 2 to keep the later maps the same size.\n` +
    table(['layer', 'AlexNet k/s', 'output', 'RF/jump', 'ZFNet k/s', 'output', 'RF/jump'], rows, 1) +
    `AlexNet (${shape(f.alexnet.input)}): ${thousands(f.alexnet.params)} params, ${gmacs(f.alexnet.macs)} GMACs; ` +
    `ZFNet (${shape(f.zfnet.input)}): ${thousands(f.zfnet.params)} params, ${gmacs(f.zfnet.macs)} GMACs.\n`
  );
}

// ---- command -----------------------------------------------------------------------------------

interface Topic<F> {
  summary: string;
  facts: () => F;
  text: (facts: F) => string;
}

function topic<F>(t: Topic<F>): { summary: string; run: (json: boolean) => string } {
  return {
    summary: t.summary,
    run: (json) => {
      const facts = t.facts();
      return json ? JSON.stringify(facts, null, 2) + '\n' : t.text(facts);
    },
  };
}

export const TOPICS = {
  'gap-vs-fc': topic({ summary: 'classifier head: fully connected vs global average pooling', facts: gapVsFc, text: gapVsFcText }),
  stacking: topic({ summary: 'three stacked 3×3 convolutions vs one 7×7', facts: () => stacking(), text: stackingText }),
  inception: topic({ summary: 'naive vs reduced inception module 3a', facts: inceptionReduction, text: inceptionText }),
  'alexnet-vs-zfnet': topic({ summary: "ZFNet's changes to AlexNet's first layers", facts: alexnetVsZfnet, text: alexnetVsZfnetText }),
} as const;

type TopicName = keyof typeof TOPICS;

function explain(name: string, json = false): string {
  const t = Object.prototype.hasOwnProperty.call(TOPICS, name) ? TOPICS[name as TopicName] : undefined;
  if (!t) throw expected(`one of ${Object.keys(TOPICS).join(', ')}`, 'topic', name);
  return t.run(json);
}

export function makeExplainCommand(): Command {
  const list = Object.entries(TOPICS)
    .map(([k, t]) => `  ${k.padEnd(18)}${t.summary}`)
    .join('\n');
  return new Command('explain')
    .description("the papers' design arguments, as numbers measured on graphs built here")
    .argument('<topic>', Object.keys(TOPICS).join(' | '))
    .option('--json', 'print the numbers as JSON')
    .addHelpText('after', `\nTopics:\n${list}\n`)
    .action((name: string, opts: { json?: boolean }) => {
      process.stdout.write(explain(name, opts.json ?? false));
    });
}
