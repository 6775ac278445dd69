/** `ilsvrc summary <model>`: per-layer shapes, parameters, MACs and receptive fields. */
import { Command } from 'commander';
import { buildModel, type BuiltModel, type ModelOptions } from '../zoo/index.js';
import { variantOf } from '../zoo/options.js';
import { summarize, type LayerRow, type Summary } from '../graph/summary.js';
import { gmacs, shape, table, thousands } from './format.js';
import { addModelOptions, modelOptionsFrom, type ModelFlags } from './options.js';

export interface ModelSummary extends Summary {
  model: string;
  /** Where the network departs from its paper's definition (MODEL_OPTIONS' variants), e.g. "lrn caffe, pool ceil, input caffe". */
  variant?: string;
}

/** The analysis of a model's inference graph (plus its aux heads when built with `aux`). */
export function summarizeModel(name: string, given: Partial<ModelOptions> = {}, detail = false): ModelSummary {
  const built: BuiltModel = buildModel(name, given);
  const outputs = [built.logits, ...built.aux.map((a) => a.logits)];
  const variant = variantOf(built.options)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return { model: built.spec.name, ...(variant ? { variant } : {}), ...summarize(built.graph, { outputs, detail }) };
}

function window(l: LayerRow): string {
  return l.kernel === undefined ? '' : `${l.kernel}/${l.stride ?? 1}`;
}

function formatSummary(s: ModelSummary): string {
  const rows = s.layers.map((l) => [
    l.name,
    l.ops.join('+'),
    shape(l.output),
    window(l),
    thousands(l.params),
    thousands(l.macs),
    String(l.rf),
    String(l.jump),
  ]);
  return (
    `${s.model}${s.variant ? ` (${s.variant})` : ''}: input ${shape(s.input)}\n` +
    table(['layer', 'ops', 'output', 'k/s', 'params', 'MACs', 'RF', 'jump'], rows, 2) +
    `total: ${thousands(s.params)} params, ${thousands(s.macs)} MACs (${gmacs(s.macs)} G)\n`
  );
}

/**
 * The layer names of two designs in network order: `a`'s, with each layer only `b` has placed
 * right after the layer that precedes it in `b` (VGG-E's conv3_4 after conv3_3, not at the end).
 */
function alignedNames(a: Summary, b: Summary): string[] {
  const out = a.layers.map((l) => l.name);
  let at = -1; // where b's previous layer stands in `out`
  for (const { name } of b.layers) {
    const i = out.indexOf(name);
    if (i >= 0) at = i;
    else out.splice(++at, 0, name);
  }
  return out;
}

const find = (s: Summary, n: string): LayerRow | undefined => s.layers.find((l) => l.name === n);

/** Two designs layer by layer (rows matched by name, in network order), then their totals. */
function formatComparison(a: ModelSummary, b: ModelSummary): string {
  const names = alignedNames(a, b);
  const cell = (l: LayerRow | undefined, f: (l: LayerRow) => string) => (l ? f(l) : '—');
  const rows = names.map((n) => {
    const [x, y] = [find(a, n), find(b, n)];
    return [
      n,
      cell(x, (l) => shape(l.output)),
      cell(y, (l) => shape(l.output)),
      cell(x, (l) => thousands(l.params)),
      cell(y, (l) => thousands(l.params)),
      cell(x, (l) => thousands(l.macs)),
      cell(y, (l) => thousands(l.macs)),
    ];
  });
  rows.push(['total', '', '', thousands(a.params), thousands(b.params), thousands(a.macs), thousands(b.macs)]);
  const [A, B] = [a.model, b.model];
  return table(['layer', `output ${A}`, `output ${B}`, `params ${A}`, `params ${B}`, `MACs ${A}`, `MACs ${B}`], rows, 1);
}

/** --compare --json: one object, the two designs aligned layer by layer (null where a layer is absent), then each whole summary. */
function comparisonJson(a: ModelSummary, b: ModelSummary): object {
  const names = alignedNames(a, b);
  const pair = <T>(n: string, f: (l: LayerRow) => T): [T | null, T | null] => {
    const [x, y] = [find(a, n), find(b, n)];
    return [x ? f(x) : null, y ? f(y) : null];
  };
  return {
    models: [a.model, b.model],
    layers: names.map((name) => ({
      name,
      output: pair(name, (l) => l.output),
      params: pair(name, (l) => l.params),
      macs: pair(name, (l) => l.macs),
    })),
    total: { params: [a.params, b.params], macs: [a.macs, b.macs] },
    summaries: [a, b],
  };
}

interface SummaryFlags extends ModelFlags {
  json?: boolean;
  detail?: boolean;
  compare?: string;
}

export function makeSummaryCommand(): Command {
  const cmd = new Command('summary')
    .description('per layer: output shape, parameters, MACs, receptive field and jump (along H)')
    .argument('<model>', 'model name or alias (see `ilsvrc models`)')
    .option('--json', 'print one JSON object')
    .option('--detail', 'one row per sub-layer (each branch of an inception block)')
    .option('--compare <model2>', 'compare with a second model built with the same options');
  return addModelOptions(cmd).action((name: string, flags: SummaryFlags) => {
    const given = modelOptionsFrom(flags);
    const detail = flags.detail ?? false;
    const a = summarizeModel(name, given, detail);
    if (flags.compare !== undefined) {
      const b = summarizeModel(flags.compare, given, detail);
      process.stdout.write(flags.json ? JSON.stringify(comparisonJson(a, b), null, 2) + '\n' : formatComparison(a, b));
      return;
    }
    process.stdout.write(flags.json ? JSON.stringify(a, null, 2) + '\n' : formatSummary(a));
  });
}
