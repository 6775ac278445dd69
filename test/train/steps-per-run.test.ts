/** Steps per run on the CPU for the update path taken: the Loop's copy cost is charged only where a Loop runs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasNativeOptimizer } from '../../src/optim/native.js';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import { parseDevice } from '../../src/runtime/device.js';
import {
  CPU_STEPS_PER_RUN,
  cpuStepsPerRun,
  defaultStepsPerRun,
  MAX_STEPS_PER_RUN,
  stepFootprint,
  stopBound,
} from '../../src/train/steps-per-run.js';

const FASHION = { width: 0.25, inputSize: 32, channels: 1 as const, classes: 10 };

test('in place, no parameter round trip is charged: long steps run one per run, short ones fill a run as in a Loop', () => {
  const alexnet = stepFootprint('alexnet', {}, DEFAULT_OPTIMIZER);
  const loop = cpuStepsPerRun(alexnet, 16, 'graph');
  const inPlace = cpuStepsPerRun(alexnet, 16, 'native');
  // The copy rule asks for CPU_STEPS_PER_RUN; a run is still kept to about a second.
  assert.equal(loop.k, Math.min(CPU_STEPS_PER_RUN, stopBound(loop.stepMs)));
  assert.ok(loop.copyMs > 100, String(loop.copyMs));
  assert.equal(inPlace.copyMs, 0);
  assert.equal(inPlace.stepMs, loop.stepMs);
  assert.equal(inPlace.k, 1, 'a step of over half a second fills a run alone');
  for (const [model, batch] of [
    ['vgg-a', 8],
    ['vgg-a', 16],
    ['zfnet', 16],
    ['alexnet', 64],
    ['nin', 16],
  ] as const) {
    assert.equal(cpuStepsPerRun(stepFootprint(model, {}, DEFAULT_OPTIMIZER), batch, 'native').k, 1, `${model} ${batch}`);
  }
  // Short steps: as many as fill about a second, whichever the path (Fashion-MNIST's VGG-A: 13).
  const fashion = stepFootprint('vgg-a', FASHION, DEFAULT_OPTIMIZER);
  for (const batch of [16, 128]) assert.equal(cpuStepsPerRun(fashion, batch, 'native').k, cpuStepsPerRun(fashion, batch, 'graph').k);
  assert.equal(cpuStepsPerRun(fashion, 16, 'native').k, MAX_STEPS_PER_RUN);
  // AlexNet at batch 8 (~0.3 s steps): three or four to the second either way.
  assert.ok(cpuStepsPerRun(alexnet, 8, 'native').k >= 3, String(cpuStepsPerRun(alexnet, 8, 'native').k));
});

test('the CPU default plans for the update the session will run, and says which', () => {
  const cpu = parseDevice('cpu');
  const t = { model: 'alexnet', modelOptions: {}, batch: 16, optimizer: DEFAULT_OPTIMIZER };
  const auto = defaultStepsPerRun(cpu, t);
  const graph = defaultStepsPerRun(cpu, { ...t, update: 'graph' });
  assert.equal(graph.k, cpuStepsPerRun(stepFootprint('alexnet', {}, DEFAULT_OPTIMIZER), 16, 'graph').k);
  assert.match(graph.reason, /parameters and state take ~\d+ ms to move per run against ~\d+ ms per step/);
  if (hasNativeOptimizer()) {
    assert.equal(auto.k, 1);
    assert.match(auto.reason, /updated in place: a run moves only its batches, ~\d+ ms per step/);
  } else assert.deepEqual(auto, graph);
  // Off the CPU the update is always a graph: nothing changes there.
  assert.equal(defaultStepsPerRun(parseDevice('webgpu'), t).k, 1);
});
