/**
 * scripts/bench-evaluate: `ilsvrc evaluate` at 10 000 classes, its wall time against the time of
 * its forward passes alone, and its peak RSS. The data is generated once: `--format idx` (the
 * default) an IDX folder of --classes × --per-class tiny grey images with int16 labels, whose
 * reading costs next to nothing, so what is measured is what grows with the classes; `--format png`
 * an ImageFolder of --classes folders of --per-class tiny PNGs (val links to train), where decoding
 * 50 000 files is most of the time. And a tiny VGG-A exported with --classes outputs. The CLI runs as a user runs it (a child, under /usr/bin/time -f %M for the
 * peak RSS, else Python's getrusage of its children); then the same model, through the library's
 * inference session, runs over the same batches from the same loader, and only its `logits` calls
 * are timed (the forward passes); the scoring (softmax, Tally) and the loader's waits are timed
 * apart, to say where the rest went. Targets: wall < 2× forward passes, peak RSS < 1 GB.
 * It first prints the machine (CPU model, cores, ISA flags, load average: the figures of a busy
 * shared machine are not those of an idle one). The last line is one JSON object.
 *
 * Options: --classes N (default 10000), --per-class N (default 5), --size N (image side, default
 * 16), --batch-size N (default 32), --threads N (ORT intra-op threads, default 0: ORT's choice),
 * --dir DIR (data and model, kept between runs; default under the OS temp folder), --format idx|png.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { idxLabels } from '../src/data/idx.js';
import { Loader, openDataset, writeIdx } from '../src/data/index.js';
import { encodePngSync } from '../src/plot/image.js';
import { scoreViews, Tally } from '../src/train/score.js';
import { openInference } from '../src/trained/inference.js';
import { evalTransforms } from '../src/trained/input.js';
import { Rng } from '../src/util/rng.js';
import { MAIN } from '../test/cli/run.js';
import { arg, intArg } from './args.js';
import { cpuInfo } from './peer.js';

const classes = intArg('classes', 10_000, 2);
const perClass = intArg('per-class', 5);
const size = intArg('size', 16);
const batchSize = intArg('batch-size', 32);
const threads = intArg('threads', 0, 0);
const format = arg('format', 'idx');
if (format !== 'idx' && format !== 'png') throw new Error(`Expected idx or png for --format but received ${format}`);
const channels = format === 'idx' ? 1 : 3;
const dir = arg('dir', path.join(os.tmpdir(), `ilsvrc-bench-evaluate-${format}-c${classes}-n${perClass}-s${size}`));
const GB = 1024 ** 3;

/** The IDX folder: train and t10k the same images, each its own noise, labels 0…classes-1 in order. */
async function makeIdx(root: string): Promise<void> {
  const marker = path.join(root, '.complete');
  if (existsSync(marker)) return;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const rng = new Rng(11);
  const n = classes * perClass;
  const pixels = new Uint8Array(n * size * size);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
  const labels = idxLabels(Array.from({ length: n }, (_, i) => Math.floor(i / perClass)));
  for (const split of ['train', 't10k']) {
    await writeIdx(path.join(root, `${split}-images-idx3-ubyte`), { dims: [n, size, size], data: pixels });
    await writeIdx(path.join(root, `${split}-labels-idx1-ubyte`), labels);
  }
  writeFileSync(marker, '');
}

/** The ImageFolder: each image its own noise, so no two decode alike. */
function makeFolder(root: string): void {
  const marker = path.join(root, '.complete');
  if (existsSync(marker)) return;
  rmSync(root, { recursive: true, force: true });
  const rng = new Rng(11);
  const rgb = new Uint8Array(size * size * 3);
  for (let c = 0; c < classes; c++) {
    const folder = path.join(root, 'train', `c${String(c).padStart(String(classes - 1).length, '0')}`);
    mkdirSync(folder, { recursive: true });
    for (let j = 0; j < perClass; j++) {
      for (let i = 0; i < rgb.length; i++) rgb[i] = rng.int(256);
      writeFileSync(path.join(folder, `${j}.png`), encodePngSync(rgb, size, size));
    }
  }
  symlinkSync('train', path.join(root, 'val'));
  writeFileSync(marker, '');
}

function cli(args: string[]): void {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ilsvrc ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

/** Runs the CLI as a child; its wall seconds, stdout, and its peak RSS in bytes (null where neither tool exists). */
function measured(args: string[]): { seconds: number; stdout: string; peakRss: number | null; via: string } {
  const argv = [process.execPath, MAIN, ...args];
  const timeOut = path.join(dir, 'time.txt');
  const viaTime = existsSync('/usr/bin/time');
  const python =
    'import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); ' +
    'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)';
  const [cmd, ...rest] = viaTime ? ['/usr/bin/time', '-f', '%M', '-o', timeOut, ...argv] : ['python3', '-c', python, ...argv];
  const t0 = performance.now();
  const r = spawnSync(cmd!, rest, { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`ilsvrc ${args.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`);
  // Both report kilobytes (Linux ru_maxrss).
  const kb = viaTime ? Number(readFileSync(timeOut, 'utf8').trim().split('\n').pop()) : Number(r.stderr.trim().split('\n').pop());
  const peakRss = Number.isFinite(kb) && !r.error ? kb * 1024 : null;
  return { seconds, stdout: r.stdout, peakRss, via: viaTime ? '/usr/bin/time -f %M' : 'python3 getrusage' };
}

/** The same model over the same batches: seconds in its logits calls, in scoring, and waiting for the loader. */
async function forwardOnly(model: string, data: string): Promise<{ forward: number; scoring: number; loading: number }> {
  const m = await openInference(model, threads ? { threads } : {});
  try {
    const splits = await openDataset(data, { channels });
    const tf = evalTransforms(m.input, m.view);
    const loader = new Loader(splits.val, tf, { batchSize, shuffle: false, seed: 0, dropLast: false, channels });
    const t = new Tally(classes);
    let forward = 0;
    let scoring = 0;
    let loading = 0;
    try {
      let mark = performance.now();
      for await (const b of loader.epoch(0)) {
        const a = performance.now();
        loading += a - mark;
        const rows = b.labels.length * b.views;
        const x = b.x.buffer instanceof SharedArrayBuffer ? b.x.slice() : b.x;
        const logits = await m.logits(x, rows);
        const f = performance.now();
        forward += f - a;
        const labels = b.labels.slice(0, b.n);
        const n = b.n;
        loader.recycle(b);
        if (b.views === 1) t.addLogits(logits, labels, n);
        else t.add(scoreViews(logits, rows, classes, b.views), labels, n);
        mark = performance.now();
        scoring += mark - f;
      }
    } finally {
      await loader.close();
    }
    return { forward: forward / 1000, scoring: scoring / 1000, loading: loading / 1000 };
  } finally {
    await m.release();
  }
}

const cpu = cpuInfo();
const load = os.loadavg().map((v) => v.toFixed(1));
const has = (flag: string) => (cpu.isa.includes(flag) ? flag : `no ${flag}`);
process.stdout.write(`machine: ${cpu.model}, ${cpu.cores} cores, ${has('avx2')}, ${has('avx512f')}; load average ${load.join(' ')}\n`);
process.stdout.write(`ISA flags: ${cpu.isa.join(' ')}\n`);

const folder = path.join(dir, 'data');
let t0 = performance.now();
if (format === 'idx') await makeIdx(folder);
else makeFolder(folder);
const data = format === 'idx' ? `idx:${folder}` : folder;
const made = ((performance.now() - t0) / 1000).toFixed(1);
const what = format === 'idx' ? 'grey images in IDX files' : 'PNGs';
process.stdout.write(`data: ${classes} classes × ${perClass} ${what} of ${size}×${size} in ${folder} (${made} s)\n`);
const model = path.join(dir, `vgg-a-${classes}.onnx`);
if (!existsSync(model)) {
  cli([
    'export',
    'vgg-a',
    '--width',
    '0.0625',
    '--input-size',
    '32',
    '--channels',
    String(channels),
    '--classes',
    String(classes),
    '-o',
    model,
  ]);
}

const args = ['evaluate', model, '--data', data, '--out', path.join(dir, 'out'), '--batch-size', String(batchSize), '--json'];
if (threads) args.push('--threads', String(threads));
const ev = measured(args);
const result = JSON.parse(ev.stdout.trim().split('\n').pop() ?? '{}') as { n: number; top1: number };
const rss = ev.peakRss === null ? 'unknown' : `${(ev.peakRss / 2 ** 20).toFixed(0)} MiB`;
process.stdout.write(`ilsvrc evaluate: ${result.n} images in ${ev.seconds.toFixed(1)} s, peak RSS ${rss} (${ev.via})\n`);

t0 = performance.now();
const fw = await forwardOnly(model, data);
const inProcess = (performance.now() - t0) / 1000;
process.stdout.write(
  `same batches in-process: forward passes ${fw.forward.toFixed(1)} s, scoring (softmax, tally) ${fw.scoring.toFixed(1)} s, ` +
    `waiting for the loader ${fw.loading.toFixed(1)} s; ${inProcess.toFixed(1)} s in all\n`,
);
const ratio = ev.seconds / fw.forward;
const rssTarget = ev.peakRss === null ? 'unknown' : ev.peakRss < GB ? 'met' : 'missed';
process.stdout.write(`wall / forward passes: ${ratio.toFixed(2)} (target < 2); peak RSS < 1 GB: ${rssTarget}\n`);
process.stdout.write(
  JSON.stringify({
    classes,
    format,
    images: result.n,
    batch_size: batchSize,
    wall_s: +ev.seconds.toFixed(2),
    forward_s: +fw.forward.toFixed(2),
    scoring_s: +fw.scoring.toFixed(2),
    loader_wait_s: +fw.loading.toFixed(2),
    wall_over_forward: +ratio.toFixed(2),
    peak_rss_mib: ev.peakRss === null ? null : Math.round(ev.peakRss / 2 ** 20),
    wall_lt_2x_forward: ratio < 2,
    rss_lt_1gb: ev.peakRss === null ? null : ev.peakRss < GB,
    cpu: cpu.model,
    cores: cpu.cores,
    avx2: cpu.isa.includes('avx2'),
    avx512f: cpu.isa.includes('avx512f'),
    load_avg: os.loadavg().map((v) => +v.toFixed(2)),
  }) + '\n',
);
