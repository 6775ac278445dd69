/**
 * scripts/bench-data: throughput of the training pipeline on a corpus of ~400 px JPEGs
 * (RandomResizedCrop 224 + flip + PCA lighting + normalise), ours on 1 and 2 cores against
 * PIL/torchvision in the same run, plus whether the loader keeps up with a trainer that blocks
 * the main thread. Each measurement runs in a child process pinned with taskset, with libuv's
 * pool sized to the cores. It first prints the CPU, the peer (scripts/peer.ts: ILSVRC_PEER_PYTHON,
 * else .venv-peer, else Debian's python3) and environment variables forcing the peer's kernels.
 * The last line is one JSON object.
 *
 * Options: --images N (default 400), --epochs N (default 2), --repeat N (default 3: each figure is
 * the best of N runs, for both sides), --dir DIR (corpus cache).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../src/util/rng.js';
import { arg, intArg } from './args.js';
import { describeSetup, peerPython, setup } from './peer.js';
import { FileDataset, Loader, Transforms } from '../src/data/index.js';
import type { Layout } from '../src/data/index.js';

const here = fileURLToPath(import.meta.url);
const repo = path.resolve(path.dirname(here), '..', '..');

/** Photo-like noise: smooth colour fields plus detail at several scales, 300–500 px, JPEG q90. */
async function makeCorpus(dir: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => path.join(dir, `${String(i).padStart(4, '0')}.jpg`));
  if (existsSync(path.join(dir, `.complete-${n}`))) return names;
  await fs.mkdir(dir, { recursive: true });
  for (const [i, file] of names.entries()) {
    const rng = new Rng(1234).fork(i);
    const w = 300 + rng.int(201);
    const h = 300 + rng.int(201);
    const acc = new Float32Array(w * h * 3);
    for (const [cell, weight] of [
      [40, 0.55],
      [10, 0.25],
      [3, 0.12],
      [1, 0.08],
    ] as const) {
      const cw = Math.ceil(w / cell);
      const ch = Math.ceil(h / cell);
      const small = Buffer.alloc(cw * ch * 3);
      for (let k = 0; k < small.length; k++) small[k] = rng.int(256);
      const big =
        cell === 1
          ? small
          : await sharp(small, { raw: { width: cw, height: ch, channels: 3 } })
              .resize(w, h, { fit: 'fill', kernel: 'cubic' })
              .raw()
              .toBuffer();
      for (let k = 0; k < acc.length; k++) acc[k] = (acc[k] ?? 0) + (big[k] ?? 0) * weight;
    }
    await sharp(Buffer.from(Uint8Array.from(acc)), { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(file);
  }
  await fs.writeFile(path.join(dir, `.complete-${n}`), '');
  return names;
}

function pipeline(): Transforms {
  return Transforms.create(3).randomResizedCrop(224).hflip().lighting(0.1).normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
}

/** Child mode: one measurement, prints img/s. */
async function run(dir: string, n: number, epochs: number, layout: Layout, workers: number, concurrency: number): Promise<void> {
  sharp.concurrency(1);
  sharp.cache(false);
  const paths = (await fs.readdir(dir))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, n)
    .map((f) => path.join(dir, f));
  const ds = new FileDataset(paths, new Int32Array(paths.length));
  const loader = new Loader(ds, pipeline(), {
    batchSize: 32,
    shuffle: true,
    seed: 1,
    dropLast: false,
    channels: 3,
    layout,
    workers,
    concurrency,
    prefetch: 2,
  });
  await loader.batch(99, 0); // warm up
  const t0 = performance.now();
  let count = 0;
  for (let e = 0; e < epochs; e++) {
    for await (const b of loader.epoch(e)) {
      count += b.n;
      loader.recycle(b); // a trainer hands each batch back once its step has read it
    }
  }
  const rate = count / ((performance.now() - t0) / 1000);
  await loader.close();
  console.log(rate.toFixed(1));
}

/** Child mode: a trainer step that blocks the main thread for `stepMs` per batch; how long did it wait for data? */
async function keepUp(dir: string, n: number, workers: number, stepMs: number): Promise<void> {
  const paths = (await fs.readdir(dir))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, n)
    .map((f) => path.join(dir, f));
  const ds = new FileDataset(paths, new Int32Array(paths.length));
  const loader = new Loader(ds, pipeline(), { batchSize: 32, shuffle: true, seed: 1, dropLast: false, channels: 3, workers, prefetch: 3 });
  const block = new Int32Array(new SharedArrayBuffer(4));
  let waited = 0;
  let first = 0;
  let batches = 0;
  const t0 = performance.now();
  let t = performance.now();
  for await (const b of loader.epoch(0)) {
    // The first batch includes starting the workers; after it, any wait is the loader falling behind.
    if (batches === 0) first = performance.now() - t;
    else waited += performance.now() - t;
    batches++;
    Atomics.wait(block, 0, 0, stepMs); // stands in for a synchronous ONNX Runtime step
    loader.recycle(b);
    t = performance.now();
  }
  const total = performance.now() - t0;
  await loader.close();
  console.log(
    JSON.stringify({ batches, firstBatchMs: Math.round(first), waitedAfterFirstMs: Math.round(waited), totalMs: Math.round(total) }),
  );
}

function child(cores: number, args: string[]): string | null {
  const cpus = cores === 1 ? '0' : '0-1';
  const env = { ...process.env, UV_THREADPOOL_SIZE: String(cores) };
  const r = spawnSync('taskset', ['-c', cpus, process.execPath, here, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    return null;
  }
  return r.stdout.trim().split('\n').pop() ?? null;
}

/** The peer's interpreter (scripts/peer.ts) when it has torchvision and PIL, else null. */
function peerWithVision(): string | null {
  const { python } = peerPython();
  return spawnSync(python, ['-c', 'import torch, torchvision, PIL'], { encoding: 'utf8' }).status === 0 ? python : null;
}

function peer(dir: string, cores: number, workers: number, epochs: number): number | null {
  const py = peerWithVision();
  if (py === null) return null;
  const r = spawnSync(
    'taskset',
    ['-c', cores === 1 ? '0' : '0-1', py, path.join(repo, 'scripts', 'bench-data-peer.py'), dir, String(workers), String(epochs)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    return null;
  }
  return Number(r.stdout.trim().split('\n').pop());
}

async function main(): Promise<void> {
  const n = intArg('images', 400);
  const epochs = intArg('epochs', 2);
  const repeat = intArg('repeat', 3);
  const dir = arg('dir', path.join(os.tmpdir(), 'ilsvrc-bench-corpus-v1'));
  if (process.argv[2] === '--run') {
    const [, , , layout, workers, conc] = process.argv;
    await run(dir, n, epochs, layout as Layout, Number(workers), Number(conc));
    return;
  }
  if (process.argv[2] === '--keep-up') {
    await keepUp(dir, n, Number(process.argv[3]), Number(process.argv[4]));
    return;
  }
  const machine = setup();
  for (const line of describeSetup(machine.cpu, machine.peer, machine.forced_env)) console.log(line);
  const vision = peerWithVision();
  if (machine.peer.torch) {
    const tv = vision
      ? spawnSync(vision, ['-c', 'import torchvision, PIL; print(torchvision.__version__, PIL.__version__)'], { encoding: 'utf8' })
          .stdout.trim()
          .split(' ')
      : [];
    console.log(
      vision
        ? `peer pipeline: torchvision ${tv[0]}, Pillow ${tv[1]}`
        : `peer pipeline: none (${machine.peer.python} has no torchvision or PIL); torchvision columns are null`,
    );
  }
  const t0 = performance.now();
  await makeCorpus(dir, n);
  console.log(`corpus: ${n} JPEGs (300–500 px, q90) in ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const common = ['--images', String(n), '--epochs', String(epochs), '--dir', dir];
  const ours = (cores: number, layout: Layout, workers: number, conc: number): number | null => {
    const out = child(cores, ['--run', layout, String(workers), String(conc), ...common]);
    const v = out === null ? null : Number(out);
    console.log(`ilsvrc  ${cores} core(s) ${layout.padEnd(8)} workers=${workers} in-flight=${conc}: ${v?.toFixed(0) ?? 'failed'} img/s`);
    return v;
  };
  const best = (xs: (number | null)[]): number | null => {
    const ok = xs.filter((x): x is number => x !== null);
    return ok.length ? Math.max(...ok) : null;
  };
  // Best of --repeat runs for every figure, ours and the peer's alike: on a shared host a run can
  // lose a third of its speed to a neighbour.
  const times = <T>(f: () => T): T[] => Array.from({ length: repeat }, f);
  const one = best(times(() => ours(1, 'nchw-f32', 0, 2)));
  ours(1, 'nhwc-u8', 0, 2);
  const two = best(times(() => [ours(2, 'nchw-f32', 0, 4), ours(2, 'nchw-f32', 2, 2)]).flat());
  ours(2, 'nhwc-u8', 0, 4);
  const p1 = best(
    times(() => {
      const v = peer(dir, 1, 0, epochs);
      console.log(`torchvision 1 core  DataLoader workers=0: ${v?.toFixed(0) ?? 'n/a'} img/s`);
      return v;
    }),
  );
  const p2 = best(
    times(() =>
      [1, 2].map((w) => {
        const v = peer(dir, 2, w, epochs);
        console.log(`torchvision 2 cores DataLoader workers=${w}: ${v?.toFixed(0) ?? 'n/a'} img/s`);
        return v;
      }),
    ).flat(),
  );
  console.log(
    `best of ${repeat}: ilsvrc ${one?.toFixed(0)} / ${two?.toFixed(0)} img/s, torchvision ${p1?.toFixed(0)} / ${p2?.toFixed(0)} img/s (1 / 2 cores)`,
  );
  if (one && p1) console.log(`ratio to torchvision: 1 core ${(one / p1).toFixed(2)}×, 2 cores ${two && p2 ? (two / p2).toFixed(2) : '?'}×`);
  for (const workers of [0, 2]) {
    const k = child(2, ['--keep-up', String(workers), '40', ...common]);
    console.log(`keep-up (trainer blocks the main thread 40 ms per batch, workers=${workers}): ${k ?? 'failed'}`);
  }
  console.log(
    JSON.stringify({
      img_s_1core: one && Math.round(one),
      img_s_2core: two && Math.round(two),
      peer_img_s_1core: p1 && Math.round(p1),
      peer_img_s_2core: p2 && Math.round(p2),
      ...machine,
    }),
  );
}

await main();
