import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSizes, stepsPerEpoch } from '../../src/train/fit.js';
import {
  DEFAULT_SCHEDULE,
  INITIAL_PLATEAU,
  learningRate,
  parseMilestones,
  plateauAfterEpoch,
  type ScheduleConfig,
} from '../../src/train/schedule.js';

const c = (o: Partial<ScheduleConfig>): ScheduleConfig => ({ ...DEFAULT_SCHEDULE, lr: 0.1, ...o });
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≈ ${b}`);

test('step and multistep decay by epoch (10 steps per epoch)', () => {
  close(learningRate(c({ kind: 'step', stepSize: 2 }), 19, 10, 100), 0.1);
  close(learningRate(c({ kind: 'step', stepSize: 2 }), 20, 10, 100), 0.01);
  close(learningRate(c({ kind: 'multistep', milestones: [1, 3] }), 25, 10, 100), 0.01);
  close(learningRate(c({ kind: 'multistep', milestones: [1, 3] }), 30, 10, 100), 0.001);
});

test('cosine and poly go from lr to minLr; warmup ramps linearly', () => {
  close(learningRate(c({ kind: 'cosine' }), 0, 10, 100), 0.1);
  close(learningRate(c({ kind: 'cosine' }), 50, 10, 100), 0.05);
  close(learningRate(c({ kind: 'cosine', minLr: 0.01 }), 100, 10, 100), 0.01);
  close(learningRate(c({ kind: 'poly', power: 0.5 }), 75, 10, 100), 0.1 * Math.sqrt(0.25));
  close(learningRate(c({ kind: 'constant', warmupSteps: 4 }), 0, 10, 100), 0.025);
  close(learningRate(c({ kind: 'constant', warmupSteps: 4 }), 3, 10, 100), 0.1);
});

test('plateau divides after `patience` epochs without improvement', () => {
  const s = c({ kind: 'plateau', patience: 1 });
  let p = plateauAfterEpoch(s, INITIAL_PLATEAU, 1.0);
  p = plateauAfterEpoch(s, p, 1.0); // one bad epoch: within patience
  assert.equal(p.factor, 1);
  p = plateauAfterEpoch(s, p, 1.0);
  close(p.factor, 0.1);
  close(learningRate(s, 0, 10, 100, p), 0.01);
  p = plateauAfterEpoch(s, p, 0.5);
  assert.deepEqual([p.best, p.bad], [0.5, 0]);
});

test('milestones parse, with errors naming the flag', () => {
  assert.deepEqual(parseMilestones('30,60'), [30, 60]);
  assert.throws(() => parseMilestones('60,30'), /--milestones/);
  assert.throws(() => parseMilestones('a'), /Expected increasing/);
});

test('runs of K steps never cross a checkpoint boundary, whatever step they start from', () => {
  assert.deepEqual(runSizes(0, 0, 10, 4, 0), [4, 4, 2]);
  assert.deepEqual(runSizes(0, 0, 10, 4, 3), [3, 3, 3, 1]);
  // Resumed at step 6 (a checkpoint): the same cut as the uninterrupted run from there on.
  assert.deepEqual(runSizes(6, 6, 10, 4, 3), [3, 1]);
  assert.equal(stepsPerEpoch(1920, 32, 1), 60);
  assert.equal(stepsPerEpoch(1920, 32, 4), 15);
});
