/** The K-step training model (src/train/loop.ts): the step's feeds stacked on K, the step graph as the Loop body. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ValueInfoProto } from '../../src/onnx/proto.js';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import { buildTrainGraph, nextName } from '../../src/train/graphs.js';
import { loopModel } from '../../src/train/loop.js';

const dims = (v: ValueInfoProto | undefined) => v?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam ?? Number(d.dimValue));

test('the K-step model: per-step feeds stacked on K, trainable values carried, frozen ones read from the outer graph', () => {
  const tg = buildTrainGraph(
    {
      model: 'nin',
      modelOptions: { width: 1 / 16, classes: 10, inputSize: 64 },
      batch: 2,
      optimizer: { ...DEFAULT_OPTIMIZER, kind: 'adamw', weightDecay: 0.01 },
      labelSmoothing: 0,
      frozen: new Set(['conv1.weight']),
    },
    'step',
  );
  const model = loopModel(tg);
  const outer = model.graph;
  const step = tg.graph;
  const perStep = step.inputs.filter((v) => !tg.states.includes(v.name!));
  const carried = [...tg.trainable.map((p) => p.name), ...tg.states];
  assert.deepEqual(
    outer.input.map((v) => v.name),
    [...perStep.map((v) => v.name), ...carried, 'conv1.weight'],
    'the single step feed names, so one feeder serves both',
  );
  for (const v of perStep) assert.deepEqual(dims(outer.input.find((i) => i.name === v.name)), ['K', ...v.shape], `${v.name} stacked on K`);
  assert.deepEqual(
    outer.output.map((v) => v.name),
    [...carried.map(nextName), 'loss', 'top1', 'top5'],
  );
  for (const n of ['loss', 'top1', 'top5']) assert.deepEqual(dims(outer.output.find((v) => v.name === n)), ['K']);

  const loop = outer.node.find((n) => n.opType === 'Loop')!;
  assert.deepEqual(loop.input.slice(2), carried, 'the trainable parameters and optimizer state are loop-carried');
  const body = loop.attribute?.find((a) => a.name === 'body')?.g;
  assert.ok(body);
  assert.ok(
    body.node.some((n) => n.opType === 'Conv' && n.input[1] === 'conv1.weight'),
    'the frozen weight is read by its outer name',
  );
  assert.equal(body.input.length, 2 + carried.length);
  const outerNames = new Set(outer.input.map((v) => v.name));
  assert.ok(!body.input.some((v) => outerNames.has(v.name)), 'no body input shadows an outer input');
  const gathers = body.node.filter((n) => n.opType === 'Gather' && n.input[1] === body.input[0]!.name);
  assert.deepEqual(
    gathers.map((n) => n.input[0]),
    perStep.map((v) => v.name),
    'each per-step input picked at the iteration',
  );
});
