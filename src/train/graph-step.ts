/**
 * One run of the step graph (K = 1) or of its Loop (K > 1) on a session's weights: the feeds, the
 * run and the adoption of the updated parameters and state. GraphUpdater (src/train/updater.ts) and
 * the page (src/web) train through this one function, so both feed a step the same way.
 */
import { hyperValues, type OptimizerConfig } from '../optim/optimizer.js';
import { tensor, type OrtSession, type OrtTensor } from '../runtime/ort.js';
import type { TrainGraph } from './graphs.js';
import { concatF32, concatI64, inputShape, labels64, output, validRows, type Weights } from './session-state.js';
import type { StepBatch, StepMetrics } from './session-types.js';

/** One optimizer step's batch and learning rate. */
export interface TrainStep {
  batch: StepBatch;
  lr: number;
}

/** Runs `steps` (one per batch, in order) through the compiled step or loop graph `tg` and adopts the result. */
export async function runStepGraph(
  session: OrtSession,
  tg: TrainGraph,
  optimizer: OptimizerConfig,
  w: Weights,
  steps: readonly TrainStep[],
): Promise<StepMetrics[]> {
  const k = steps.length;
  const out = await session.run(stepFeeds(tg, optimizer, w, steps));
  w.adopt(tg, out);
  w.step += k;
  const [loss, top1, top5] = [output(out, 'loss'), output(out, 'top1'), output(out, 'top5')];
  return steps.map(({ batch }, i) => ({ loss: at(loss, i), top1: at(top1, i), top5: at(top5, i), n: validRows(batch) }));
}

/** The step graph's feeds; with K > 1 steps, each per-step input is the K steps' stacked on a leading axis. */
function stepFeeds(tg: TrainGraph, optimizer: OptimizerConfig, w: Weights, steps: readonly TrainStep[]): Record<string, OrtTensor> {
  const k = steps.length;
  const batches = steps.map((s) => s.batch);
  const stack = (shape: readonly number[]) => (k === 1 ? shape : [k, ...shape]);
  const feeds: Record<string, OrtTensor> = {
    input: tensor(
      'float32',
      stacked(
        batches.map((b) => b.x),
        concatF32,
      ),
      stack(inputShape(tg)),
    ),
    labels: tensor(
      'int64',
      stacked(
        batches.map((b) => labels64(b.labels)),
        concatI64,
      ),
      stack([batches[0]?.labels.length ?? 0]),
    ),
  };
  const hyper = steps.map(({ lr }, i) => hyperValues(optimizer, lr, w.step + i + 1));
  tg.hyper.forEach(
    (h, j) =>
      (feeds[h] = tensor(
        'float32',
        Float32Array.from(hyper, (row) => at(row, j)),
        k === 1 ? [] : [k],
      )),
  );
  // Masks are drawn step by step, in the same order as k single steps would draw them.
  const masks = tg.masks.map(() => [] as Float32Array[]);
  for (let i = 0; i < k; i++) tg.masks.forEach((m, j) => masks[j]?.push(w.mask(m.shape, m.rate)));
  tg.masks.forEach((m, j) => (feeds[m.name] = tensor('float32', stacked(masks[j] ?? [], concatF32), stack(m.shape))));
  w.feed(tg, feeds, true);
  return feeds;
}

/** The one array itself (no copy), or the arrays stacked end to end. */
function stacked<T>(parts: readonly T[], concat: (parts: readonly T[]) => T): T {
  const [only, ...more] = parts;
  return only !== undefined && more.length === 0 ? only : concat(parts);
}

export function at(a: ArrayLike<number>, i: number): number {
  const v = a[i];
  if (v === undefined) throw new Error(`expected at least ${i + 1} values but received ${a.length}`);
  return v;
}
