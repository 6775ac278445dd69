/** `ilsvrc models`: the zoo with parameter counts and MACs measured on the built graphs. */
import { Command } from 'commander';
import { MODELS, buildModel, type ModelSpec } from '../zoo/index.js';
import { gmacs, table, thousands } from './format.js';

export interface ModelRow {
  name: string;
  title: string;
  paper: string;
  /** Where a variant that is not the paper's own comes from ("torchvision 0.14 alexnet"); absent for the papers' forms. */
  source?: string;
  year: number;
  /** Default input side in pixels. */
  input: number;
  params: number;
  macs: number;
  gmacs: number;
  aliases: string[];
  /** The paper's training recipe: `ilsvrc train`'s defaults for the model. */
  recipe: ModelSpec['recipe'];
}

/** "sgd lr 0.01 m 0.9 wd 5e-4, batch 128, alenet aug." */
function formatRecipe(r: ModelSpec['recipe']): string {
  const wd = r.weightDecay < 1e-3 ? r.weightDecay.toExponential() : String(r.weightDecay);
  return `${r.optimizer} lr ${r.lr} m ${r.momentum} wd ${wd}, batch ${r.batchSize}, ${r.augment} aug.`;
}

/** Builds each model at its default configuration; parameters stay lazy, so nothing is allocated. */
export function modelRow(spec: ModelSpec): ModelRow {
  const { graph } = buildModel(spec);
  const macs = graph.macs();
  return {
    name: spec.name,
    title: spec.title,
    paper: spec.paper,
    ...(spec.source !== undefined ? { source: spec.source } : {}),
    year: spec.year,
    input: spec.defaultInput,
    params: graph.paramCount(),
    macs,
    gmacs: Number((macs / 1e9).toFixed(3)),
    aliases: [...(spec.aliases ?? [])],
    recipe: spec.recipe,
  };
}

export function formatModels(rows: readonly ModelRow[]): string {
  return table(
    ['name', 'title', 'source', 'year', 'input', 'params', 'GMACs', "paper's recipe (train defaults)", 'aliases'],
    rows.map((r) => [
      r.name,
      r.title,
      r.source ?? 'paper',
      String(r.year),
      String(r.input),
      thousands(r.params),
      gmacs(r.macs),
      formatRecipe(r.recipe),
      r.aliases.join(', '),
    ]),
    ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'left', 'left'],
  );
}

export function makeModelsCommand(): Command {
  return new Command('models')
    .description('list the models with their parameters and multiply–accumulates at the default input')
    .option('--json', 'print a JSON array')
    .action((opts: { json?: boolean }) => {
      const rows = MODELS.map(modelRow);
      process.stdout.write(opts.json ? JSON.stringify(rows, null, 2) + '\n' : formatModels(rows));
    });
}
