/**
 * Training and inference throughput of zoo models at paper resolution on the CPU, next to the
 * PyTorch peer (scripts/peer_torch.py; the newest PyTorch available, see scripts/peer.ts:
 * ILSVRC_PEER_PYTHON, else .venv-peer, else Debian's python3-torch). Each measurement runs in a
 * child process of its own so that its peak RSS is its own. It first prints the CPU model and ISA,
 * the peer's version, BLAS and oneDNN, and environment variables that force the peer's kernels.
 *
 *   scripts/bench-train [--models alexnet,googlenet,nin,vgg-a,vgg-a-bn] [--steps N] [--threads 2] [--k auto|K] [--profile]
 *
 * --k: steps per session run; auto (default) is what `ilsvrc train` picks on the CPU. Training and
 * inference sessions take the options `ilsvrc train --device cpu` gives them (resolveDevice).
 *
 * --peer torch (default) | ort-training: the training peer. ort-training is ONNX Runtime's own
 * training stack (Python onnxruntime-training 1.19.2, scripts/peer_ort_training.py) on the model
 * ilsvrc exports: its interpreter is ILSVRC_ORT_TRAINING_PYTHON, else .venv-ortt/bin/python at the
 * repository root. Its artifacts offer plain SGD (no momentum) and AdamW only, so it runs plain
 * SGD; the inference column stays PyTorch's.
 *
 * --profile: ORT profiles the timed training runs (a little slower); each row gains time_by_op,
 * the share of kernel time per ONNX op type, and the top ones are printed.
 *
 * The last line is one JSON object: {"results":[{model, batch, train_img_s, infer_img_s,
 * peer_train_img_s, peer_infer_img_s, peak_rss_mb, peer_peak_rss_mb, train_gflop_s,
 * peer_train_gflop_s, ...}], "copy": {...}, "peak": {...}, "cpu": {...}, "peer": {...}, "forced_env": {...}}.
 *
 * GFLOP/s count the multiply-adds of the convolutions and fully connected layers (×2): forward,
 * weight gradients, and input gradients wherever the layer's input depends on a parameter. "peak"
 * is the best FP32 rate measured here for one large convolution, by onnxruntime and by PyTorch: it
 * says how close to the machine each side runs, and so how much faster either could be.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModel } from '../src/zoo/index.js';
import { sizeOf } from '../src/graph/dtype.js';
import { Graph } from '../src/graph/graph.js';
import { toModel } from '../src/graph/serialize.js';
import { trainingMacs } from '../src/graph/summary.js';
import { encodeModel } from '../src/onnx/proto.js';
import { conv } from '../src/ops/conv.js';
import { identity } from '../src/ops/elementwise.js';
import { DEFAULT_OPTIMIZER } from '../src/optim/optimizer.js';
import { parseDevice, resolveDevice } from '../src/runtime/device.js';
import { defaultStepsPerRun } from '../src/train/steps-per-run.js';
import { createSession, tensor, type SessionOptions } from '../src/runtime/ort.js';
import { kernelTime, takeProfile } from '../src/runtime/profile.js';
import { TrainingSession, type StepBatch } from '../src/train/training-session.js';
import { Rng } from '../src/util/rng.js';
import { arg, intArg } from './args.js';
import { describeSetup, peerPython, peerScript, REPO, setup } from './peer.js';

const BATCH: Record<string, number> = { alexnet: 16, googlenet: 16, nin: 16, 'vgg-a': 8, 'vgg-a-bn': 8 };
const self = fileURLToPath(import.meta.url);

function freshBatches(n: number, count: number, size: number, seed: number): StepBatch[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => ({
    x: Float32Array.from({ length: n * 3 * size * size }, () => rng.normal()),
    labels: Int32Array.from({ length: n }, () => rng.int(1000)),
  }));
}

const peakMb = () => process.resourceUsage().maxRSS / 1024;

/** Multiply-adds per image for inference and for one training step (no auxiliary heads, as measured). */
function macsPerImage(model: string): { infer: number; train: number } {
  const built = buildModel(model, { aux: false }, { training: true, batch: 1 });
  const m = trainingMacs(built.graph, [built.logits]);
  return { infer: m.forward, train: m.training };
}

/** One large convolution (16×192×27×27 → 256, 5×5) in onnxruntime: weights as an input (as in training) and as an initializer (as in inference). */
async function ortConvPeak(threads: number): Promise<{ input: number; initializer: number }> {
  const [N, C, M, H, K] = [16, 192, 256, 27, 5];
  const rng = new Rng(3);
  const w = Float32Array.from({ length: M * C * K * K }, () => rng.normal() * 0.05);
  const x = Float32Array.from({ length: N * C * H * H }, () => rng.normal());
  const flop = 2 * N * M * C * K * K * H * H;
  const rate = async (asInitializer: boolean): Promise<number> => {
    const g = new Graph('peak');
    const xi = g.input('x', 'float32', [N, C, H, H]);
    const wi = asInitializer ? g.constant(w, [M, C, K, K], 'float32') : g.input('w', 'float32', [M, C, K, K]);
    g.output(conv(xi, wi, undefined, { strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1], group: 1 }), 'y');
    const session = await createSession(encodeModel(toModel(g)), { threads });
    const feeds: Record<string, ReturnType<typeof tensor>> = { x: tensor('float32', x, [N, C, H, H]) };
    if (!asInitializer) feeds['w'] = tensor('float32', w, [M, C, K, K]);
    let best = 0;
    for (let i = 0; i < 7; i++) {
      const t = performance.now();
      await session.run(feeds);
      if (i > 0) best = Math.max(best, flop / ((performance.now() - t) / 1000) / 1e9);
    }
    return best;
  };
  return { input: await rate(false), initializer: await rate(true) };
}

/** The model at its paper's options with the default optimizer, as every measurement here trains or exports it. */
function benchSession(model: string, batch: number, session?: SessionOptions): Promise<TrainingSession> {
  const o = { model, modelOptions: {}, batch, optimizer: DEFAULT_OPTIMIZER, labelSmoothing: 0, frozen: [], seed: 1 };
  return TrainingSession.create(session ? { ...o, session } : o);
}

/** Child: one measurement, printed as one JSON line. */
async function child(
  mode: string,
  model: string,
  batch: number,
  steps: number,
  threads: number,
  k: number,
  profile: boolean,
): Promise<void> {
  const size = mode === 'train' || mode === 'infer' ? buildModel(model).options.inputSize : 0;
  if (mode === 'train') {
    const prefix = path.join(os.tmpdir(), `ilsvrc-bench-train-${process.pid}`);
    const s = await benchSession(model, batch, { ...resolveDevice('cpu', { threads }).session, ...(profile ? { profile: prefix } : {}) });
    // Fresh batches every run: re-fed batches drive the loss to 0 and the timings off.
    const runs = Math.max(1, Math.ceil(steps / k));
    await s.runSteps(freshBatches(batch, k, size, 99), new Array<number>(k).fill(0.01)); // warm-up
    let secs = 0;
    for (let r = 0; r < runs; r++) {
      const data = freshBatches(batch, k, size, r);
      const t = performance.now();
      await s.runSteps(data, new Array<number>(k).fill(0.01));
      secs += (performance.now() - t) / 1000;
    }
    let time_by_op: Record<string, number> | undefined;
    if (profile) {
      await s.endProfiling();
      // Share of kernel time per op type over the timed runs (not the warm-up).
      const k = kernelTime(takeProfile(prefix), 1, (e) => e.args?.op_name ?? '?');
      time_by_op = Object.fromEntries(k.by.map(([op, d]) => [op, Math.round((1000 * d) / k.total) / 1000]));
    }
    console.log(JSON.stringify({ img_s: (runs * k * batch) / secs, step_s: secs / (runs * k), peak_rss_mb: peakMb(), time_by_op }));
  } else if (mode === 'infer') {
    const s = await benchSession(model, batch);
    const session = await createSession(s.exportModelForInferencing(), resolveDevice('cpu', { threads }).session);
    const data = freshBatches(batch, 2, size, 5);
    await session.run({ input: tensor('float32', data[0]!.x, [batch, 3, size, size]) });
    const t = performance.now();
    for (let i = 0; i < steps; i++) await session.run({ input: tensor('float32', data[i % 2]!.x, [batch, 3, size, size]) });
    const secs = (performance.now() - t) / 1000;
    console.log(JSON.stringify({ img_s: (steps * batch) / secs, peak_rss_mb: peakMb() }));
  } else if (mode === 'peak') {
    console.log(JSON.stringify(await ortConvPeak(threads)));
  } else {
    // copy: what feeding parameters + momentum in and getting them back costs, with no compute.
    const built = buildModel(model);
    const g = new Graph('copy');
    const feeds: Record<string, ReturnType<typeof tensor>> = {};
    for (const p of built.graph.params) {
      for (const suffix of ['', '.momentum']) {
        const name = `${p.value.name}${suffix}`;
        const v = g.input(name, 'float32', p.value.shape);
        g.output(identity(v), `${name}.next`);
        feeds[name] = tensor('float32', new Float32Array(sizeOf(p.value.shape)), p.value.shape);
      }
    }
    const session = await createSession(encodeModel(toModel(g)), { threads });
    await session.run(feeds);
    const t = performance.now();
    for (let i = 0; i < steps; i++) await session.run(feeds);
    console.log(JSON.stringify({ copy_s: (performance.now() - t) / 1000 / steps }));
  }
}

type ChildOut = Record<string, number> & { time_by_op?: Record<string, number> };

function runChild(args: string[]): ChildOut | null {
  const r = spawnSync(process.execPath, ['--max-old-space-size=8192', self, '--child', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ChildOut;
  } catch {
    process.stderr.write(`child ${args.join(' ')} failed: ${r.stderr.slice(-2000)}\n`);
    return null;
  }
}

function peer(
  model: string,
  batch: number,
  mode: 'train' | 'infer' | 'peak',
  steps: number,
  threads: number,
): Record<string, number> | null {
  const which = mode === 'peak' ? [] : ['--model', model, '--batch', String(batch)];
  try {
    const out = execFileSync(
      peerPython().python,
      [peerScript('peer_torch.py'), ...which, '--mode', mode, '--steps', String(steps), '--threads', String(threads)],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    return JSON.parse(out.trim().split('\n').pop() ?? '') as Record<string, number>;
  } catch {
    return null;
  }
}

/** ONNX Runtime training's step on ilsvrc's exported model (scripts/peer_ort_training.py). */
async function ortTrainingPeer(model: string, batch: number, steps: number, threads: number): Promise<Record<string, number> | null> {
  const python = process.env['ILSVRC_ORT_TRAINING_PYTHON'] || path.join(REPO, '.venv-ortt', 'bin', 'python');
  const file = path.join(os.tmpdir(), `ilsvrc-bench-ortt-${process.pid}-${model}.onnx`);
  const s = await benchSession(model, batch);
  writeFileSync(file, s.exportModelForInferencing());
  await s.release();
  try {
    const r = spawnSync(
      python,
      [
        peerScript('peer_ort_training.py'),
        '--onnx',
        file,
        '--batch',
        String(batch),
        '--steps',
        String(steps),
        '--threads',
        String(threads),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    if (r.status !== 0) {
      process.stderr.write(
        `ort-training peer (${python}) failed: ${(r.error?.message ?? r.stderr).trim().split('\n').slice(-3).join(' | ')}\n`,
      );
      return null;
    }
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Record<string, number>;
  } finally {
    rmSync(file, { force: true });
  }
}

async function orchestrate(): Promise<void> {
  const models = arg('models', 'alexnet,googlenet,nin,vgg-a,vgg-a-bn').split(',');
  const peerKind = arg('peer', 'torch');
  if (peerKind !== 'torch' && peerKind !== 'ort-training') {
    process.stderr.write(`Expected torch or ort-training for --peer but received "${peerKind}"\n`);
    process.exit(2);
  }
  const steps = intArg('steps', 8);
  const threads = intArg('threads', 2);
  const kArg = arg('k', 'auto') === 'auto' ? 'auto' : intArg('k', 4);
  // Steps per run: what `ilsvrc train` picks on the CPU (defaultStepsPerRun) unless --k says.
  const kFor = (model: string, batch: number): number =>
    kArg === 'auto' ? defaultStepsPerRun(parseDevice('cpu'), { model, modelOptions: {}, batch, optimizer: DEFAULT_OPTIMIZER }).k : kArg;
  const profile = process.argv.includes('--profile');
  const machine = setup();
  for (const line of describeSetup(machine.cpu, machine.peer, machine.forced_env)) console.log(line);
  const torch = machine.peer.torch !== null;
  const results = [];
  const r2 = (v: number | undefined | null) => (v == null ? null : Math.round(v * 100) / 100);
  const r1 = (v: number | undefined | null) => (v == null ? null : Math.round(v * 10) / 10);
  // The machine's FP32 rate on one large convolution, before and after the models (it drifts on shared hosts).
  const peakRuns: Record<string, number>[] = [];
  const measurePeak = (): void => {
    const o = runChild(['peak', 'conv', '0', '0', String(threads), '1']);
    const p = torch ? peer('', 0, 'peak', 0, threads) : null;
    peakRuns.push({ ort_input: o?.['input'] ?? NaN, ort_initializer: o?.['initializer'] ?? NaN, torch: p?.['gflop_s'] ?? NaN });
  };
  measurePeak();
  for (const model of models) {
    const batch = BATCH[model] ?? 16;
    const k = kFor(model, batch);
    const tr = runChild(['train', model, String(batch), String(steps), String(threads), String(k), ...(profile ? ['profile'] : [])]);
    const inf = runChild(['infer', model, String(batch), String(steps), String(threads), '1']);
    const ptr =
      peerKind === 'ort-training'
        ? await ortTrainingPeer(model, batch, Math.min(steps, 6), threads)
        : torch
          ? peer(model, batch, 'train', Math.min(steps, 6), threads)
          : null;
    const pinf = torch ? peer(model, batch, 'infer', steps, threads) : null;
    const macs = macsPerImage(model);
    const gflop = (imgS: number | undefined, perImage: number) => (imgS === undefined ? null : r1((imgS * 2 * perImage) / 1e9));
    const row = {
      model,
      batch,
      k,
      train_peer: peerKind === 'ort-training' ? 'onnxruntime-training (plain SGD)' : 'pytorch',
      train_gflop_per_img: r2((2 * macs.train) / 1e9),
      train_gflop_s: gflop(tr?.['img_s'], macs.train),
      peer_train_gflop_s: gflop(ptr?.['img_s'], macs.train),
      infer_gflop_s: gflop(inf?.['img_s'], macs.infer),
      peer_infer_gflop_s: gflop(pinf?.['img_s'], macs.infer),
      train_img_s: r2(tr?.['img_s']),
      infer_img_s: r2(inf?.['img_s']),
      peer_train_img_s: r2(ptr?.['img_s']),
      peer_infer_img_s: r2(pinf?.['img_s']),
      train_ratio: tr && ptr ? r2(tr['img_s']! / ptr['img_s']!) : null,
      infer_ratio: inf && pinf ? r2(inf['img_s']! / pinf['img_s']!) : null,
      peak_rss_mb: r2(tr?.['peak_rss_mb']),
      peer_peak_rss_mb: r2(ptr?.['peak_rss_mb']),
      ...(tr?.time_by_op ? { time_by_op: tr.time_by_op } : {}),
    };
    console.log(
      `${model.padEnd(10)} b${batch}  train ${row.train_img_s} img/s (${peerKind} ${row.peer_train_img_s}, ×${row.train_ratio})  infer ${row.infer_img_s} img/s (peer ${row.peer_infer_img_s}, ×${row.infer_ratio})  RSS ${row.peak_rss_mb} MB (peer ${row.peer_peak_rss_mb})`,
    );
    console.log(
      `           GFLOP/s  train ${row.train_gflop_s} (peer ${row.peer_train_gflop_s})  infer ${row.infer_gflop_s} (peer ${row.peer_infer_gflop_s}), ${row.train_gflop_per_img} GFLOP per training image`,
    );
    if (row.time_by_op) {
      const top = Object.entries(row.time_by_op)
        .slice(0, 8)
        .map(([op, share]) => `${op} ${(100 * share).toFixed(1)} %`);
      console.log(`           training kernel time: ${top.join(', ')}`);
    }
    results.push(row);
  }
  measurePeak();
  const best = (key: string) => r1(Math.max(...peakRuns.map((p) => p[key] ?? NaN).filter(Number.isFinite)));
  const peak = {
    conv_ort_weights_as_input_gflop_s: best('ort_input'),
    conv_ort_nchwc_gflop_s: best('ort_initializer'),
    conv_torch_gflop_s: torch ? best('torch') : null,
  };
  console.log(
    `one large convolution, best of before/after: onnxruntime ${peak.conv_ort_weights_as_input_gflop_s} GFLOP/s (weights as input), ${peak.conv_ort_nchwc_gflop_s} (initializer, NCHWc); PyTorch ${peak.conv_torch_gflop_s}`,
  );
  // The boundary: parameters + momentum in and out once per run, against K steps of compute at batch 32.
  const k = kFor('alexnet', 32);
  const copy = runChild(['copy', 'alexnet', '32', '3', String(threads), '1']);
  const step32 = runChild(['train', 'alexnet', '32', String(k), String(threads), String(k)]);
  const share = copy && step32 ? copy['copy_s']! / (k * step32['step_s']! + copy['copy_s']!) : null;
  const copyRow = {
    model: 'alexnet',
    batch: 32,
    k,
    copy_s: r2(copy?.['copy_s'] ?? null),
    step_s: r2(step32?.['step_s'] ?? null),
    copy_share: share == null ? null : Math.round(share * 1000) / 1000,
  };
  console.log(
    `alexnet b32: parameter+momentum round trip ${copyRow.copy_s} s per run of ${k} steps of ${copyRow.step_s} s → ${(100 * (share ?? NaN)).toFixed(1)} % of step time`,
  );
  console.log(JSON.stringify({ results, copy: copyRow, peak, ...machine }));
}

if (process.argv.includes('--child')) {
  const [mode, model, batch, steps, threads, k, profile] = process.argv.slice(process.argv.indexOf('--child') + 1);
  await child(mode!, model!, Number(batch), Number(steps), Number(threads), Number(k), profile === 'profile');
} else {
  await orchestrate();
}
