/**
 * scripts/bench-fmnist: the small-model CPU recipe people actually run, end to end through the
 * real `ilsvrc train` CLI, next to the same recipe in PyTorch (scripts/peer_fmnist.py) on the same
 * machine, in the same run, with the same threads: Fashion-MNIST, VGG-A at width 1/4 and 32 px,
 * batch 128, SGD momentum 0.9 (weight decay 5e-4, lr 0.01 constant), random horizontal flips,
 * validation on the 10,000 test images after each epoch.
 *
 *   scripts/bench-fmnist [--epochs 2] [--repeat 1] [--threads 2] [--batch 128] [--width 0.25] [--size 32] [--dir DIR]
 *
 * --dir: an MNIST-format IDX folder (default /usr/share/datasets/fashion-mnist, from Debian's
 * dataset-fashion-mnist). --repeat N runs both sides N times, alternating which goes first.
 * Seconds per epoch include validation on both sides (the CLI's epoch time does), and exclude
 * start-up (building the graph and session; loading the data). The peer is chosen as in
 * scripts/peer.ts (ILSVRC_PEER_PYTHON, .venv-peer, else Debian's python3-torch).
 *
 * The last line is one JSON object: {epoch_s, peer_epoch_s, ratio, top1, peer_top1, img_s,
 * peer_img_s, runs: [...], cpu, peer, forced_env}; epoch_s is the mean over epochs of the best run.
 *
 * --breakdown [--steps 40]: instead, where an epoch of ilsvrc's side goes, measured part by part
 * in this process through the API the CLI uses: rendering the training batches (the loader, on
 * this thread), the training steps at K = 1, the CPU default and 16 steps per run (the
 * difference is the per-run cost), and validation over the test split; each scaled to one epoch.
 * Wall and CPU (this process, all threads) milliseconds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { number } from '../src/cli/options.js';
import { Loader, openIdx, Transforms } from '../src/data/index.js';
import { DEFAULT_OPTIMIZER } from '../src/optim/optimizer.js';
import { parseDevice, resolveDevice } from '../src/runtime/device.js';
import { defaultStepsPerRun } from '../src/train/steps-per-run.js';
import { TrainingSession, type StepBatch } from '../src/train/training-session.js';
import { evaluateLoader } from '../src/train/score.js';
import { arg, intArg } from './args.js';
import { describeSetup, peerPython, peerScript, REPO, setup } from './peer.js';

const DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

function floatArg(name: string, fallback: number): number {
  const text = arg(name, String(fallback));
  const n = number(text);
  if (n === undefined || n <= 0) {
    process.stderr.write(`Expected a positive number for --${name} but received "${text}"\n`);
    process.exit(2);
  }
  return n;
}

interface Side {
  epoch_s: number[];
  top1: number;
  train_images: number;
  wall_s: number;
}

interface Recipe {
  dir: string;
  epochs: number;
  threads: number;
  batch: number;
  width: number;
  size: number;
}

const LR = 0.01;
const MOMENTUM = 0.9;
const WEIGHT_DECAY = 5e-4;

function ours(r: Recipe): Side | string {
  const out = mkdtempSync(path.join(os.tmpdir(), 'ilsvrc-bench-fmnist-'));
  try {
    const args = [
      path.join(REPO, 'dist/src/cli/main.js'),
      'train',
      'vgg-a',
      '--data',
      `idx:${r.dir}`,
      '--width',
      String(r.width),
      '--input-size',
      String(r.size),
      '--channels',
      '1',
      '--classes',
      '10',
      '--batch-size',
      String(r.batch),
      '--optimizer',
      'sgd',
      '--lr',
      String(LR),
      '--momentum',
      String(MOMENTUM),
      '--weight-decay',
      String(WEIGHT_DECAY),
      '--schedule',
      'constant',
      '--augment',
      'flip',
      '--epochs',
      String(r.epochs),
      '--threads',
      String(r.threads),
      '--out',
      out,
      '--json',
    ];
    const t = performance.now();
    const p = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
    const wall = (performance.now() - t) / 1000;
    if (p.status !== 0) return `ilsvrc train exited ${p.status}: ${p.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    const rows = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { seconds: number; val_top1: number; img_per_s: number; step: number });
    const last = rows[rows.length - 1]!;
    return { epoch_s: rows.map((x) => x.seconds), top1: last.val_top1, train_images: (last.step / rows.length) * r.batch, wall_s: wall };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function peer(r: Recipe): Side | string {
  const { python } = peerPython();
  const args = [
    peerScript('peer_fmnist.py'),
    '--dir',
    r.dir,
    '--epochs',
    String(r.epochs),
    '--batch',
    String(r.batch),
    '--width',
    String(r.width),
    '--size',
    String(r.size),
    '--lr',
    String(LR),
    '--momentum',
    String(MOMENTUM),
    '--weight-decay',
    String(WEIGHT_DECAY),
    '--threads',
    String(r.threads),
  ];
  const t = performance.now();
  const p = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const wall = (performance.now() - t) / 1000;
  if (p.status !== 0) return `${python} peer_fmnist.py exited ${p.status}: ${p.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  const j = JSON.parse(p.stdout.trim().split('\n').pop() ?? '') as { train_images: number; epochs: { epoch_s: number; top1: number }[] };
  return { epoch_s: j.epochs.map((e) => e.epoch_s), top1: j.epochs[j.epochs.length - 1]!.top1, train_images: j.train_images, wall_s: wall };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const r2 = (v: number): number => Math.round(v * 100) / 100;
const r4 = (v: number): number => Math.round(v * 10000) / 10000;

async function breakdown(r: Recipe, steps: number): Promise<void> {
  const data = await openIdx(r.dir);
  const modelOptions = { width: r.width, inputSize: r.size, channels: 1 as const, classes: data.classes.length };
  const optimizer = { ...DEFAULT_OPTIMIZER, momentum: MOMENTUM, weightDecay: WEIGHT_DECAY };
  const spe = Math.floor(data.train.length / r.batch);
  if (steps < 16 || steps > spe) {
    process.stderr.write(`Expected an integer in [16, ${spe}] (whole batches of one epoch) for --steps but received "${steps}"\n`);
    process.exit(2);
  }
  const clock = (): { wall: number; cpu: number } => {
    const c = process.cpuUsage();
    return { wall: performance.now(), cpu: (c.user + c.system) / 1000 };
  };
  const since = (t: { wall: number; cpu: number }) => {
    const n = clock();
    return { wall: n.wall - t.wall, cpu: n.cpu - t.cpu };
  };
  const train = new Loader(data.train, Transforms.train('flip', { size: r.size, channels: 1 }), {
    batchSize: r.batch,
    shuffle: true,
    seed: 0,
    dropLast: true,
    channels: 1,
    workers: 0,
  });
  await train.batch(0, 0);
  let t = clock();
  const batches: StepBatch[] = [];
  for (let i = 0; i < steps; i++) {
    const b = await train.batch(0, i);
    batches.push({ x: b.x, labels: b.labels });
  }
  const loader = since(t);
  await train.close();
  const auto = defaultStepsPerRun(parseDevice('cpu'), { model: 'vgg-a', modelOptions, batch: r.batch, optimizer }).k;
  const s = await TrainingSession.create({
    model: 'vgg-a',
    modelOptions,
    batch: r.batch,
    optimizer,
    labelSmoothing: 0,
    frozen: [],
    seed: 0,
    session: resolveDevice('cpu', { threads: r.threads }).session,
  });
  const perStep: Record<string, { wall: number; cpu: number }> = {};
  // Each K twice, in the order 1, auto, 16, 16, auto, 1, the better of the two kept: a neighbour's
  // load moves any single figure.
  const ks = [...new Set([1, auto, 16])];
  for (const k of [...ks, ...ks.slice().reverse()]) {
    await s.runSteps(batches.slice(0, k), new Array<number>(k).fill(LR));
    t = clock();
    let done = 0;
    for (let i = 0; i + k <= steps; i += k, done += k) await s.runSteps(batches.slice(i, i + k), new Array<number>(k).fill(LR));
    const d = since(t);
    const prev = perStep[`k${k}`];
    if (!prev || d.wall / done < prev.wall) perStep[`k${k}`] = { wall: d.wall / done, cpu: d.cpu / done };
  }
  const val = new Loader(data.val, Transforms.eval('none', { size: r.size, channels: 1 }), {
    batchSize: r.batch,
    shuffle: false,
    seed: 0,
    dropLast: false,
    padLast: true,
    channels: 1,
    workers: 0,
  });
  s.loadParametersBuffer(s.getContiguousParameters()); // new weights: validation builds its session, as after every epoch
  t = clock();
  await evaluateLoader(val, data.classes.length, (x, rows) => s.runInference(x, rows));
  const validation = since(t);
  await val.close();
  await s.release();
  const epoch = (x: { wall: number; cpu: number }, per: number) => ({ wall_s: r2((x.wall * per) / 1000), cpu_s: r2((x.cpu * per) / 1000) });
  const result = {
    steps_per_epoch: spe,
    k_auto: auto,
    loader: epoch(loader, spe / steps),
    train_k1: epoch(perStep['k1']!, spe),
    train_auto: epoch(perStep[`k${auto}`]!, spe),
    train_k16: epoch(perStep['k16']!, spe),
    validation: epoch(validation, 1),
  };
  console.log(`per epoch (${spe} steps of ${r.batch}), wall / CPU seconds:`);
  for (const [name, v] of Object.entries(result))
    if (typeof v === 'object') console.log(`  ${name.padEnd(12)} ${String(v.wall_s).padStart(7)} / ${v.cpu_s}`);
  console.log(JSON.stringify(result));
}

async function main(): Promise<void> {
  const dir = arg('dir', DEFAULT_DIR);
  if (!existsSync(path.join(dir, 'train-images-idx3-ubyte.gz')) && !existsSync(path.join(dir, 'train-images-idx3-ubyte'))) {
    process.stderr.write(
      `Expected a Fashion-MNIST IDX folder (train-images-idx3-ubyte[.gz], …) for --dir but received "${dir}" (Debian: apt-get install dataset-fashion-mnist)\n`,
    );
    process.exit(2);
  }
  const recipe: Recipe = {
    dir,
    epochs: intArg('epochs', 2),
    threads: intArg('threads', 2),
    batch: intArg('batch', 128),
    width: floatArg('width', 0.25),
    size: intArg('size', 32),
  };
  if (process.argv.includes('--breakdown')) {
    await breakdown(recipe, intArg('steps', 40));
    return;
  }
  const repeat = intArg('repeat', 1);
  const s = setup();
  for (const line of describeSetup(s.cpu, s.peer, s.forced_env)) console.log(line);
  console.log(
    `recipe: vgg-a width ${recipe.width}, ${recipe.size} px, batch ${recipe.batch}, sgd lr ${LR} momentum ${MOMENTUM} wd ${WEIGHT_DECAY}, flips, ${recipe.epochs} epochs, ${recipe.threads} threads, ${dir}`,
  );
  const runs: { ours: Side | null; peer: Side | null; first: string }[] = [];
  for (let i = 0; i < repeat; i++) {
    const first = i % 2 === 0 ? 'ilsvrc' : 'peer';
    let a: Side | string = 'not run';
    let b: Side | string | null = null;
    if (first === 'ilsvrc') a = ours(recipe);
    if (s.peer.torch) b = peer(recipe);
    if (first === 'peer') a = ours(recipe);
    const fmt = (x: Side | string | null): string =>
      x === null
        ? 'n/a'
        : typeof x === 'string'
          ? x
          : `${x.epoch_s.map((e) => e.toFixed(1)).join(' / ')} s per epoch (${(x.train_images / mean(x.epoch_s)).toFixed(0)} img/s), top-1 ${(100 * x.top1).toFixed(2)} %, ${x.wall_s.toFixed(1)} s in all`;
    console.log(`run ${i + 1} (${first} first): ilsvrc ${fmt(a)}`);
    console.log(`run ${i + 1} (${first} first): peer   ${fmt(b)}`);
    runs.push({ ours: typeof a === 'string' ? null : a, peer: b === null || typeof b === 'string' ? null : b, first });
    if (typeof a === 'string') process.exitCode = 1;
  }
  const best = (side: 'ours' | 'peer'): Side | null =>
    runs
      .map((r) => r[side])
      .filter((x): x is Side => x !== null)
      .sort((x, y) => mean(x.epoch_s) - mean(y.epoch_s))[0] ?? null;
  const o = best('ours');
  const p = best('peer');
  const result = {
    epoch_s: o ? r2(mean(o.epoch_s)) : null,
    peer_epoch_s: p ? r2(mean(p.epoch_s)) : null,
    ratio: o && p ? r2(mean(o.epoch_s) / mean(p.epoch_s)) : null,
    top1: o ? r4(o.top1) : null,
    peer_top1: p ? r4(p.top1) : null,
    img_s: o ? Math.round(o.train_images / mean(o.epoch_s)) : null,
    peer_img_s: p ? Math.round(p.train_images / mean(p.epoch_s)) : null,
    runs: runs.map((r) => ({
      first: r.first,
      epoch_s: r.ours?.epoch_s.map(r2) ?? null,
      peer_epoch_s: r.peer?.epoch_s.map(r2) ?? null,
      top1: r.ours ? r4(r.ours.top1) : null,
      peer_top1: r.peer ? r4(r.peer.top1) : null,
    })),
    ...s,
  };
  if (result.ratio !== null) console.log(`ilsvrc / peer seconds per epoch: ${result.ratio}× (best of ${repeat}; below 1 is faster)`);
  console.log(JSON.stringify(result));
}

await main();
