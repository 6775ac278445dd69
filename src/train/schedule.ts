/**
 * Learning-rate schedules as pure functions of the optimizer step. Epoch-based schedules (step,
 * multistep) read the epoch as step / stepsPerEpoch, so a resumed run needs nothing but the step.
 * The plateau schedule (÷10 when validation stops improving, as AlexNet and VGG were trained) has
 * state, updated once per epoch; it is plain data so a checkpoint carries it.
 */
import { expected } from '../util/errors.js';

export const SCHEDULES = ['constant', 'step', 'multistep', 'plateau', 'cosine', 'poly'] as const;
export type ScheduleKind = (typeof SCHEDULES)[number];

export interface ScheduleConfig {
  kind: ScheduleKind;
  lr: number;
  /** step: multiply by gamma every stepSize epochs. */
  stepSize: number;
  /** multistep: multiply by gamma at each of these epochs. */
  milestones: readonly number[];
  gamma: number;
  /** poly: (1 − t/T)^power, GoogLeNet's "quick" solver uses 0.5. */
  power: number;
  /** plateau: epochs without improvement before dividing by 1/gamma. */
  patience: number;
  /** Linear warmup from ~0 over this many optimizer steps. */
  warmupSteps: number;
  /** Lowest rate cosine/poly reach. */
  minLr: number;
}

export const DEFAULT_SCHEDULE: ScheduleConfig = {
  kind: 'constant',
  lr: 0.01,
  stepSize: 30,
  milestones: [],
  gamma: 0.1,
  power: 0.5,
  patience: 2,
  warmupSteps: 0,
  minLr: 0,
};

/** What the plateau schedule remembers between epochs. */
export interface PlateauState {
  /** Product of the reductions applied so far. */
  factor: number;
  best: number;
  bad: number;
}

export const INITIAL_PLATEAU: PlateauState = { factor: 1, best: Infinity, bad: 0 };

/** The rate of optimizer step `step` (0-based) out of `totalSteps`, with `stepsPerEpoch` per epoch. */
export function learningRate(
  c: ScheduleConfig,
  step: number,
  stepsPerEpoch: number,
  totalSteps: number,
  plateau: PlateauState = INITIAL_PLATEAU,
): number {
  const epoch = Math.floor(step / Math.max(1, stepsPerEpoch));
  let lr: number;
  switch (c.kind) {
    case 'constant':
      lr = c.lr;
      break;
    case 'step':
      lr = c.lr * c.gamma ** Math.floor(epoch / c.stepSize);
      break;
    case 'multistep':
      lr = c.lr * c.gamma ** c.milestones.filter((m) => epoch >= m).length;
      break;
    case 'plateau':
      lr = c.lr * plateau.factor;
      break;
    case 'cosine': {
      const t = Math.min(1, step / Math.max(1, totalSteps));
      lr = c.minLr + 0.5 * (c.lr - c.minLr) * (1 + Math.cos(Math.PI * t));
      break;
    }
    case 'poly': {
      const t = Math.min(1, step / Math.max(1, totalSteps));
      lr = c.minLr + (c.lr - c.minLr) * (1 - t) ** c.power;
      break;
    }
  }
  // Warmup scales whatever the schedule says; (step + 1) so the first step is not at rate 0.
  if (step < c.warmupSteps) lr *= (step + 1) / c.warmupSteps;
  return lr;
}

/** After an epoch: the plateau state given that epoch's validation loss (lower is better). */
export function plateauAfterEpoch(c: ScheduleConfig, s: PlateauState, valLoss: number): PlateauState {
  // A relative threshold of 1e-4, as torch's ReduceLROnPlateau, so noise is not an improvement.
  if (valLoss < s.best * (1 - 1e-4)) return { factor: s.factor, best: valLoss, bad: 0 };
  const bad = s.bad + 1;
  if (bad > c.patience) return { factor: s.factor * c.gamma, best: s.best, bad: 0 };
  return { factor: s.factor, best: s.best, bad };
}

/** "30,60,90" → [30, 60, 90]; errors name --milestones. */
export function parseMilestones(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const out = parts.map(Number);
  if (parts.length === 0 || out.some((n, i) => !/^\d+$/.test(parts[i] ?? '') || n < 1) || out.some((n, i) => i > 0 && n <= out[i - 1]!)) {
    throw expected('increasing positive epoch numbers separated by commas', '--milestones', text);
  }
  return out;
}
