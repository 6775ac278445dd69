/**
 * scripts/profile-step: where one training step's time goes, by op type and execution provider
 * (ORT's profiler), on any device: what `bench-train --profile` shows for the CPU, for WebGPU and
 * CUDA too, with the host↔device copies (Memcpy*) and the nodes that fell back to the CPU.
 *
 *   node dist/scripts/profile-step.js [--device cpu|cuda|webgpu] [--model alexnet] [--batch 64]
 *                                     [--steps 4] [--threads N] [--width X] [--input-size PX]
 *                                     [--channels 1|3] [--classes N] [--nodes N]
 *
 * --width/--input-size/--channels/--classes: the model options of `ilsvrc train` (small models:
 * --model vgg-a --width 0.25 --input-size 32 --channels 1 --classes 10 --batch 128).
 * --nodes N: also print the N slowest nodes by name.
 *
 * One step per run (WebGPU has no Loop). The first run is the warm-up; the figures are the others'.
 * The last line is one JSON object: {model, device, batch, step_ms, run_ms, kernel_ms, by_op}.
 */
import os from 'node:os';
import path from 'node:path';
import { buildModel, type ModelOptions } from '../src/zoo/index.js';
import { number } from '../src/cli/options.js';
import { DEFAULT_OPTIMIZER } from '../src/optim/optimizer.js';
import { probeDevice, resolveDevice } from '../src/runtime/device.js';
import { kernelTime, profileRuns, takeProfile } from '../src/runtime/profile.js';
import { TrainingSession } from '../src/train/training-session.js';
import { Rng } from '../src/util/rng.js';
import { arg, intArg } from './args.js';

function positive(name: string): number {
  const text = arg(name, '');
  const n = number(text);
  if (n === undefined || n <= 0) {
    process.stderr.write(`Expected a positive number for --${name} but received "${text}"\n`);
    process.exit(2);
  }
  return n;
}

const model = arg('model', 'alexnet');
const device = arg('device', 'cpu');
const batch = intArg('batch', 64);
const steps = intArg('steps', 4, 2);
const threads = intArg('threads', 0, 0);
const modelOptions: Partial<ModelOptions> = {};
if (process.argv.includes('--width')) modelOptions.width = positive('width');
if (process.argv.includes('--input-size')) modelOptions.inputSize = intArg('input-size', 224);
if (process.argv.includes('--channels')) modelOptions.channels = intArg('channels', 3) === 1 ? 1 : 3;
if (process.argv.includes('--classes')) modelOptions.classes = intArg('classes', 1000);
const nodes = intArg('nodes', 0, 0);
const built = buildModel(model, modelOptions);
const size = built.options.inputSize;
const channels = built.options.channels;
const classes = built.options.classes;
const resolved = resolveDevice(device, threads > 0 ? { threads } : {});
await probeDevice(resolved);
const prefix = path.join(os.tmpdir(), `ilsvrc-profile-step-${process.pid}`);
const session = await TrainingSession.create({
  model,
  modelOptions,
  batch,
  optimizer: DEFAULT_OPTIMIZER,
  labelSmoothing: 0,
  frozen: [],
  seed: 1,
  session: { ...resolved.session, profile: prefix },
});
const rng = new Rng(7);
const walls: number[] = [];
for (let i = 0; i < steps; i++) {
  const b = {
    x: Float32Array.from({ length: batch * channels * size * size }, () => rng.normal()),
    labels: Int32Array.from({ length: batch }, () => rng.int(classes)),
  };
  const t = performance.now();
  await session.runSteps([b], [0.01]);
  walls.push(performance.now() - t);
}
await session.endProfiling();
await session.release();
const events = takeProfile(prefix);
const runs = profileRuns(events);
const k = kernelTime(events, 1, (e) => `${e.args?.op_name ?? '?'} @ ${(e.args?.provider ?? '?').replace('ExecutionProvider', '')}`);
const kernel = k.total;
const timed = steps - 1;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const stepMs = mean(walls.slice(1));
const runMs = mean(runs.slice(1).map((e) => e.dur / 1000));
console.log(
  `${model} batch ${batch} on ${device}: ${stepMs.toFixed(0)} ms per step (${((batch * 1000) / stepMs).toFixed(1)} img/s), of which ORT run ${runMs.toFixed(0)} ms and kernels ${(kernel / 1000 / timed).toFixed(0)} ms`,
);
const rows = k.by;
for (const [k, d] of rows.slice(0, 16))
  console.log(`  ${k.padEnd(34)} ${(d / 1000 / timed).toFixed(1).padStart(8)} ms  ${((100 * d) / kernel).toFixed(1).padStart(5)} %`);
if (nodes > 0) {
  const byNode = kernelTime(events, 1, (e) => `${e.name.replace(/_kernel_time$/, '')} (${e.args?.op_name ?? '?'})`).by;
  console.log(`slowest nodes:`);
  for (const [n, d] of byNode.slice(0, nodes))
    console.log(`  ${n.padEnd(60)} ${(d / 1000 / timed).toFixed(2).padStart(8)} ms  ${((100 * d) / kernel).toFixed(1).padStart(5)} %`);
}
console.log(
  JSON.stringify({
    model,
    device,
    batch,
    step_ms: Math.round(stepMs),
    run_ms: Math.round(runMs),
    kernel_ms: Math.round(kernel / 1000 / timed),
    by_op: Object.fromEntries(rows.map(([k, d]) => [k, Math.round((1000 * d) / kernel) / 1000])),
  }),
);
