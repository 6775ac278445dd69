/**
 * scripts/gpu-check: a short training of alexnet and vgg-a at paper resolution on every execution
 * provider that loads (cpu, cuda, webgpu), each provider in its own child process (a provider that
 * aborts cannot take the report with it). Losses are compared with the CPU run of the same seed
 * and batches; img/s is printed next to PyTorch on the same GPU when `python3` has a CUDA torch.
 *
 *   scripts/gpu-check [--quick] [--models alexnet,vgg-a] [--providers cpu,cuda,webgpu] [--runs N]
 *
 * --quick: tiny widths and sizes (seconds on a CPU), for CI and this script's own test.
 * The last line is one JSON object: {"rows":[{provider, model, loaded, loss_agrees, train_img_s,
 * peer_train_img_s, error, …}]}. The whole check stays under 8 minutes: children get what is left.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OPTIMIZER } from '../src/optim/optimizer.js';
import { parseDevice, probeDevice, resolveDevice } from '../src/runtime/device.js';
import { TrainingSession, type StepBatch } from '../src/train/training-session.js';
import { Rng } from '../src/util/rng.js';
import { buildModel, type ModelOptions } from '../src/zoo/index.js';

interface Setting {
  model: string;
  options: Partial<ModelOptions>;
  batch: number;
  /** Steps per session run (the Loop's K) where the provider has Loop. */
  k: number;
}

const FULL: Record<string, Setting> = {
  alexnet: { model: 'alexnet', options: {}, batch: 64, k: 4 },
  'vgg-a': { model: 'vgg-a', options: {}, batch: 32, k: 4 },
};
const QUICK: Record<string, Setting> = {
  alexnet: { model: 'alexnet', options: { width: 0.125, inputSize: 127, classes: 10 }, batch: 4, k: 2 },
  'vgg-a': { model: 'vgg-a', options: { width: 0.125, inputSize: 32, classes: 10 }, batch: 4, k: 2 },
};

/** What a child reports for one provider and model. */
interface ChildRow {
  provider: string;
  model: string;
  loaded: boolean;
  losses: number[];
  train_img_s: number | null;
  input: number;
  batch: number;
  k: number;
  error: string | null;
}

export interface Row {
  provider: string;
  model: string;
  loaded: boolean;
  loss_agrees: boolean | null;
  max_loss_diff: number | null;
  train_img_s: number | null;
  peer_train_img_s: number | null;
  input: number | null;
  batch: number | null;
  error: string | null;
}

const BUDGET_S = 450; // under the 8 minutes the check promises, with room for the peer
const self = fileURLToPath(import.meta.url);

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Seeded images and labels: the same bytes in every child. */
function batchOf(s: Setting, index: number, size: number, classes: number, channels: number): StepBatch {
  const rng = new Rng(1000 + index);
  const x = new Float32Array(s.batch * channels * size * size);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const labels = Int32Array.from({ length: s.batch }, () => rng.int(classes));
  return { x, labels };
}

async function child(provider: string, s: Setting, runs: number): Promise<ChildRow> {
  const built = buildModel(s.model, s.options, { training: true, batch: 1 });
  const size = built.options.inputSize;
  const row: ChildRow = {
    provider,
    model: s.model,
    loaded: false,
    losses: [],
    train_img_s: null,
    input: size,
    batch: s.batch,
    k: s.k,
    error: null,
  };
  const device = parseDevice(provider);
  try {
    const resolved = resolveDevice(device);
    await probeDevice(resolved);
    row.loaded = true;
    // WebGPU has no Loop kernel: K single-step runs there, one K-step run elsewhere.
    const k = device.kind === 'webgpu' ? 1 : s.k;
    row.k = k;
    const session = await TrainingSession.create({
      model: s.model,
      modelOptions: s.options,
      batch: s.batch,
      optimizer: { ...DEFAULT_OPTIMIZER },
      labelSmoothing: 0,
      frozen: [],
      seed: 7,
      session: resolved.session,
    });
    const { classes, channels } = built.options;
    let next = 0;
    const take = (n: number) => Array.from({ length: n }, () => batchOf(s, next++, size, classes, channels));
    // The compared steps (the first run also builds the session).
    for (let done = 0; done < s.k; done += k) {
      const m = await session.runSteps(take(k), Array(k).fill(0.01));
      row.losses.push(...m.map((r) => r.loss));
    }
    // Timed runs on fresh batches, made before the clock starts.
    const timed = Array.from({ length: runs }, () => take(k));
    const t0 = process.hrtime.bigint();
    for (const b of timed) await session.runSteps(b, Array(k).fill(0.01));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    row.train_img_s = round((runs * k * s.batch) / seconds);
    await session.release();
  } catch (e) {
    row.error = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 600);
  }
  return row;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

function runChild(provider: string, model: string, quick: boolean, runs: number, timeoutS: number): ChildRow[] {
  const args = [
    '--max-old-space-size=16384',
    self,
    '--child',
    provider,
    '--models',
    model,
    '--runs',
    String(runs),
    ...(quick ? ['--quick'] : []),
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24, timeout: timeoutS * 1000 });
  const last = r.stdout?.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as ChildRow[];
  } catch {
    const why = r.error ? `${r.error.message}` : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
    const tail = (r.stderr ?? '')
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .slice(-2)
      .join(' | ')
      .slice(0, 300);
    return [
      {
        provider,
        model,
        loaded: false,
        losses: [],
        train_img_s: null,
        input: 0,
        batch: 0,
        k: 0,
        error: `child failed (${why})${tail ? `: ${tail}` : ''}`,
      },
    ];
  }
}

/** PyTorch train img/s on the GPU (scripts/peer_torch.py --device cuda), or null without a CUDA torch. */
function peerCuda(model: string, batch: number): number | null {
  try {
    const out = execFileSync(
      'python3',
      [
        fileURLToPath(new URL('../../scripts/peer_torch.py', import.meta.url)),
        '--model',
        model,
        '--batch',
        String(batch),
        '--mode',
        'train',
        '--steps',
        '10',
        '--device',
        'cuda',
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 120_000,
      },
    );
    const v = (JSON.parse(out.trim().split('\n').pop() ?? '') as { img_s?: number }).img_s;
    return typeof v === 'number' ? round(v) : null;
  } catch {
    return null;
  }
}

function hasCudaTorch(): boolean {
  return (
    spawnSync('python3', ['-c', 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'], { stdio: 'ignore', timeout: 60_000 })
      .status === 0
  );
}

/** Losses agree when each step is within 2 % (at least 0.02 absolute): GPUs use TF32 and other conv algorithms. */
export function lossesAgree(ref: readonly number[], got: readonly number[]): { agrees: boolean; maxDiff: number } {
  let maxDiff = 0;
  let agrees = ref.length > 0 && ref.length === got.length;
  ref.forEach((r, i) => {
    const g = got[i] ?? Number.NaN;
    const d = Math.abs(g - r);
    maxDiff = Math.max(maxDiff, Number.isFinite(d) ? d : Number.POSITIVE_INFINITY);
    if (!(d <= Math.max(0.02, 0.02 * Math.abs(r)))) agrees = false;
  });
  return { agrees, maxDiff };
}

async function orchestrate(): Promise<void> {
  const t0 = Date.now();
  const quick = process.argv.includes('--quick');
  const models = (arg('--models') ?? 'alexnet,vgg-a').split(',');
  const providers = (arg('--providers') ?? 'cpu,cuda,webgpu').split(',');
  const gpuRuns = Number(arg('--runs') ?? (quick ? 1 : 5));
  const table = quick ? QUICK : FULL;
  for (const m of models) if (!table[m]) throw new Error(`gpu-check: unknown model ${m} (known: ${Object.keys(table).join(', ')})`);
  const left = () => BUDGET_S - (Date.now() - t0) / 1000;
  const results = new Map<string, ChildRow>();
  for (const provider of providers) {
    for (const model of models) {
      if (left() < 20) {
        results.set(`${provider}/${model}`, {
          provider,
          model,
          loaded: false,
          losses: [],
          train_img_s: null,
          input: 0,
          batch: 0,
          k: 0,
          error: 'skipped: out of time',
        });
        continue;
      }
      const runs = provider === 'cpu' ? 1 : gpuRuns;
      for (const r of runChild(provider, model, quick, runs, Math.max(10, Math.min(240, left() - 10)))) {
        results.set(`${r.provider}/${r.model}`, r);
        const what = r.loaded
          ? `losses ${r.losses.map((l) => l.toFixed(4)).join(' ')}, ${r.train_img_s ?? '-'} img/s (batch ${r.batch}, ${r.input} px, K ${r.k})`
          : 'not loaded';
        console.log(`${provider.padEnd(7)} ${model.padEnd(8)} ${what}${r.error ? ` — ${r.error}` : ''}`);
      }
    }
  }
  const torchCuda = !quick && hasCudaTorch();
  const peers = new Map<string, number | null>();
  const rows: Row[] = [];
  for (const provider of providers) {
    for (const model of models) {
      const r = results.get(`${provider}/${model}`)!;
      const ref = results.get(`cpu/${model}`);
      const cmp = r.loaded && provider !== 'cpu' && ref?.loaded && !r.error ? lossesAgree(ref.losses, r.losses) : undefined;
      let peer: number | null = null;
      if (provider !== 'cpu' && r.loaded && torchCuda && left() > 30) {
        if (!peers.has(model)) peers.set(model, peerCuda(model, r.batch));
        peer = peers.get(model) ?? null;
      }
      rows.push({
        provider,
        model,
        loaded: r.loaded,
        loss_agrees: provider === 'cpu' ? (r.loaded && !r.error ? true : null) : cmp ? cmp.agrees : null,
        max_loss_diff: cmp ? round(cmp.maxDiff * 1e4) / 1e4 : null,
        train_img_s: r.train_img_s,
        peer_train_img_s: peer,
        input: r.input || null,
        batch: r.batch || null,
        error: r.error,
      });
    }
  }
  if (!torchCuda && !quick) console.log('note: python3 has no CUDA torch here; peer_train_img_s is null');
  console.log(`gpu-check: ${Math.round((Date.now() - t0) / 1000)} s`);
  console.log(JSON.stringify({ rows }));
}

async function childMain(): Promise<void> {
  const provider = arg('--child')!;
  const table = process.argv.includes('--quick') ? QUICK : FULL;
  const runs = Number(arg('--runs') ?? '1');
  const out: ChildRow[] = [];
  for (const m of (arg('--models') ?? '').split(',')) out.push(await child(provider, table[m]!, runs));
  console.log(JSON.stringify(out));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await (process.argv.includes('--child') ? childMain() : orchestrate());
}
