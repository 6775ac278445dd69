/**
 * Where a run stands between steps: epoch, step, step in the epoch, the epoch's running sums and
 * the schedule/best progress. The loop (fit.ts) moves it; a checkpoint saves it (`saved`) and a
 * resume restores it, so the counters live in one place.
 */
import type { Checkpoint } from './checkpoint.js';
import type { EpochSums, RunProgress, SavedProgress } from './config.js';
import type { EvalResult } from './score.js';
import { INITIAL_PLATEAU, plateauAfterEpoch, type ScheduleConfig } from './schedule.js';
import type { StepMetrics } from './session-types.js';

const NO_SUMS: EpochSums = { loss: 0, hits: 0, seen: 0, seconds: 0, dataWait: 0, lr: 0 };

export class RunState {
  /** Epochs completed. */
  epoch = 0;
  /** Optimizer steps done in the epoch in progress. */
  inEpoch = 0;
  /** Optimizer steps done in all. */
  step = 0;
  /** The epoch in progress; a mid-epoch checkpoint carries them, so a resumed epoch's record covers the whole epoch. */
  sums: EpochSums = { ...NO_SUMS };
  progress: RunProgress = { plateau: INITIAL_PLATEAU, bestTop1: 0, bestTop5: 0, bestEpoch: 0, bad: 0 };
  /** When the epoch in progress began, less the time a resumed one had spent before. */
  private started = Date.now();

  constructor(
    readonly stepsPerEpoch: number,
    resume?: Checkpoint,
  ) {
    if (!resume) return;
    this.epoch = resume.meta.epoch;
    this.inEpoch = resume.meta.batchInEpoch;
    this.step = resume.state.step;
    const saved = resume.meta.progress;
    if (saved) {
      const { epochSums, ...p } = saved;
      this.progress = { ...p, plateau: { ...p.plateau, best: p.plateau.best ?? Infinity } };
      if (epochSums && this.inEpoch > 0) this.sums = { ...epochSums };
    }
  }

  /** The progress as a checkpoint stores it (JSON has no Infinity: a plateau with no best yet is null). */
  saved(): SavedProgress {
    const p = this.progress;
    const best = Number.isFinite(p.plateau.best) ? p.plateau.best : null;
    return { ...p, plateau: { ...p.plateau, best }, ...(this.inEpoch > 0 ? { epochSums: this.sums } : {}) };
  }

  /** Epochs done, with the fraction of one in progress. */
  epochs(): number {
    return Number((this.epoch + this.inEpoch / this.stepsPerEpoch).toFixed(4));
  }

  startEpoch(): void {
    this.started = Date.now() - this.sums.seconds * 1000;
  }

  /** Seconds spent in the epoch in progress. */
  elapsed(): number {
    return (Date.now() - this.started) / 1000;
  }

  /** Keeps the time spent in the epoch in its sums, for a checkpoint taken mid-epoch. */
  keepTime(): void {
    this.sums.seconds = this.elapsed();
  }

  /** A step's metrics (its loss already checked finite) into the epoch's sums. */
  count(m: StepMetrics): void {
    this.sums.loss += m.loss * m.n;
    this.sums.hits += m.top1;
    this.sums.seen += m.n;
  }

  /** `k` steps done, the last at learning rate `lr`. */
  advance(k: number, lr: number): void {
    this.step += k;
    this.inEpoch += k;
    this.sums.lr = lr;
  }

  /**
   * The epoch's validation into the progress: the schedule's plateau state (a whole epoch only),
   * the best and the epochs since it. `partial`: a run stopping mid-epoch; its record is at the
   * fraction done (`at`).
   */
  validated(v: Pick<EvalResult, 'loss' | 'top1' | 'top5'>, schedule: ScheduleConfig, partial: boolean): { at: number; improved: boolean } {
    const at = partial ? this.epochs() : this.epoch + 1;
    let prog = this.progress;
    if (!partial) prog.plateau = plateauAfterEpoch(schedule, prog.plateau, v.loss);
    const improved = v.top1 > prog.bestTop1 || prog.bestEpoch === 0;
    if (improved) prog = { ...prog, bestTop1: v.top1, bestTop5: v.top5, bestEpoch: at, bad: partial ? prog.bad : 0 };
    else if (!partial) prog = { ...prog, bad: prog.bad + 1 };
    this.progress = prog;
    return { at, improved };
  }

  /** The epoch in progress is done: the next starts with fresh sums. */
  nextEpoch(): void {
    this.epoch++;
    this.inEpoch = 0;
    this.sums = { ...NO_SUMS };
  }
}
