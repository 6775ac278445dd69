/**
 * How many optimizer steps one session run takes (K). What a run of K steps is depends on where the
 * update runs (updatePath, src/optim/native.ts):
 * - graph (GPUs; the CPU without the native addon): K steps in one ONNX Loop run (its trip count),
 *   parameters and state crossing into the run and back once. On a GPU the most K whose run fits in
 *   device memory; on the CPU from the measured cost of that crossing against the step's compute;
 * - native (the CPU's default): K single steps, each updating in place, in one call to the session
 *   (one worker round trip, one progress line, one check for a stop). Nothing but the K batches
 *   crosses, so only the fixed cost of a run counts.
 * A planner of training runs, so it lives with training.
 */
import { execFileSync } from 'node:child_process';
import { buildModel, type ModelOptions } from '../zoo/index.js';
import { sizeOf } from '../graph/dtype.js';
import { trainingMacs } from '../graph/summary.js';
import { updatePath } from '../optim/native.js';
import { stateSuffixes, type OptimizerConfig } from '../optim/optimizer.js';
import type { Device } from '../runtime/device.js';
import type { Graph } from '../graph/graph.js';

/** Float counts of one training step of a model (per sample where it scales with the batch). */
interface StepFootprint {
  /** Trainable + frozen parameters. */
  params: number;
  /** Optimizer state (momentum, Adam moments). */
  state: number;
  /** Forward activations of one sample (every node output). */
  activationsPerSample: number;
  /** Per-step inputs of one sample fed to the Loop (image, dropout masks), stacked K deep. */
  inputsPerSample: number;
  /** Multiply-adds of one training step per sample (summary.ts trainingMacs). */
  trainMacsPerSample: number;
}

/** Floats of every node output of a graph: what a run may hold at once, as a rough upper estimate (ORT reuses some). */
export function outputFloats(g: Graph): number {
  let n = 0;
  for (const node of g.nodes) for (const v of node.outputs) n += v.size;
  return n;
}

export function stepFootprint(model: string, modelOptions: Partial<ModelOptions>, optimizer: OptimizerConfig): StepFootprint {
  const built = buildModel(model, { ...modelOptions, aux: modelOptions.aux ?? false }, { training: true, batch: 1 });
  const g = built.graph;
  const params = g.params.reduce((a, p) => a + p.value.size, 0);
  const activations = outputFloats(g);
  const inputs = g.inputs.reduce((a, v) => a + sizeOf(v.shape), 0);
  const trainMacsPerSample = trainingMacs(g, [built.logits, ...built.aux.map((a) => a.logits)]).training;
  return {
    params,
    state: params * stateSuffixes(optimizer).length,
    activationsPerSample: activations,
    inputsPerSample: inputs,
    trainMacsPerSample,
  };
}

/**
 * Bytes one run of K steps needs on the device, by parts. The Loop holds parameters and state as
 * fed inputs, loop-carried values and outputs (≈ 3 copies, the CPU measurement in the design notes),
 * plus one set of gradients; activations are kept for backward and about doubled by the gradients
 * flowing back; the K stacked batches sit on the device for the whole run.
 */
export function stepMemory(
  f: StepFootprint,
  batch: number,
  k: number,
  overhead = CUDA_OVERHEAD,
): { fixed: number; perStep: number; total: number } {
  const B = 4;
  const fixed = weightMemory(f) + B * 3 * f.activationsPerSample * batch + overhead;
  const perStep = B * f.inputsPerSample * batch + 8 * batch;
  return { fixed, perStep, total: fixed + k * perStep };
}

/** Bytes of the parameters and optimizer state a run holds: the Loop's three copies plus one set of gradients. */
export function weightMemory(f: StepFootprint): number {
  return 4 * (3 * (f.params + f.state) + f.params);
}

/** CUDA context, cuDNN workspaces and arena slack, measured loosely: kept out of K's budget. */
const CUDA_OVERHEAD = 1.5 * 2 ** 30;

/** More steps per run save little once the parameter round trip is amortised; checkpoints and the display get coarser. */
export const MAX_STEPS_PER_RUN = 16;

/** Largest K ≤ cap whose run fits in `share` of the device memory; 1 when even one step may not fit. */
export function stepsPerRunFor(f: StepFootprint, batch: number, deviceBytes: number, cap = MAX_STEPS_PER_RUN, share = 0.85): number {
  const { fixed, perStep } = stepMemory(f, batch, 0);
  const room = share * deviceBytes - fixed;
  if (room < perStep) return 1;
  return Math.max(1, Math.min(cap, Math.floor(room / perStep)));
}

/** Total memory of CUDA device `id` in bytes from nvidia-smi, or undefined where it is absent. */
export function cudaMemoryBytes(id = 0, run: (cmd: string, args: string[]) => string = nvidiaSmi): number | undefined {
  let out: string;
  try {
    out = run('nvidia-smi', ['--query-gpu=memory.total', '--format=csv,noheader,nounits', `--id=${id}`]);
  } catch {
    return undefined;
  }
  const mib = Number.parseFloat(out.trim().split('\n')[0] ?? '');
  return Number.isFinite(mib) && mib > 0 ? mib * 2 ** 20 : undefined;
}

function nvidiaSmi(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
}

/**
 * A training step on a CUDA device, for stopBound only: 10 TFLOP/s of fp32, an assumption (not
 * measured) well under what current cards reach, so that runs stay short rather than long.
 */
const CUDA_STEP_MS_PER_GFLOP = 0.1;

/** Assumed when nvidia-smi cannot say: a small card, so K stays safe. */
const ASSUMED_CUDA_BYTES = 8 * 2 ** 30;

/** The most steps per run the CPU rule picks (more measured no faster, and each costs memory). */
export const CPU_STEPS_PER_RUN = 4;

/**
 * The CPU's costs behind its K, measured with scripts/bench-train on 2 cores: moving parameters and
 * optimizer state into a run and back out costs about 1 ms per MB (AlexNet, 488 MB: 0.45 s more per
 * run at K = 1 than at K = 4), and a training step about 10 ms per GFLOP (NIN 9.3, VGG-A 8.7).
 */
const CPU_COPY_MS_PER_MB = 1;
const CPU_STEP_MS_PER_GFLOP = 10;
/** The round trip's share of a run that K is chosen to stay under. */
const CPU_COPY_SHARE = 0.08;

/**
 * A run should hold at least this much compute. Each run also pays a fixed cost apart from the
 * parameters: the worker round trip, the feeds, waking ORT's threads, the progress line — about
 * 2 ms of CPU on an idle machine, far more wall time on a busy one, where every hand-off waits for
 * a core. For Fashion-MNIST's VGG-A (width 1/4, 32 px, batch 128: ~80 ms steps) `ilsvrc train`
 * with 13 steps per run took 0.56–0.89× the time of 2 on a busy 2-core host (four rounds), and
 * 1.09× in the one round measured idle; the weights are identical.
 */
const CPU_RUN_MS = 1000;

/**
 * A stop (Ctrl-C, SIGTERM) is acted on between runs, never inside one (the Loop cannot be cut short):
 * K is kept to runs of about this long, so that a stop is acted on within about a second. A single
 * step that takes longer (VGG-D at 224 px on a CPU) is one run; a user's --steps-per-run is taken as given.
 */
export const STOP_RUN_MS = 1000;

/** The most steps of `stepMs` that fit in STOP_RUN_MS; at least 1. */
export function stopBound(stepMs: number): number {
  return Math.max(1, Math.floor(STOP_RUN_MS / stepMs));
}

/**
 * K on the CPU. Graph (a Loop): the fewest steps per run (each one more holds more memory: the Loop
 * keeps copies of the loop-carried parameters and state) that bring the parameter round trip under
 * 8 % of the run, at most CPU_STEPS_PER_RUN; and when even those runs are short (small models, small
 * images), as many as fill CPU_RUN_MS, at most MAX_STEPS_PER_RUN — their parameters and batches are
 * small, so the Loop's copies cost little. NIN and GoogLeNet at 224 px get 1, AlexNet and VGG-A at
 * small batches 4, VGG-D at batch 32 1 (its 30 s step dwarfs the copy), VGG-A width 1/4 at 32 px 13.
 * Native (in place): no round trip to amortise, only the fill rule: 1 wherever a step takes over
 * CPU_RUN_MS / 2 (AlexNet from batch 16, VGG-A from batch 8), 13 for VGG-A width 1/4 at 32 px.
 * Then, on either path, at most as many as fit in a second (stopBound): AlexNet at batch 8 3, at 16 and more 1.
 */
export function cpuStepsPerRun(
  f: StepFootprint,
  batch: number,
  update: 'native' | 'graph' = 'graph',
): { k: number; copyMs: number; stepMs: number } {
  const copyMs = update === 'graph' ? (CPU_COPY_MS_PER_MB * 4 * (f.params + f.state)) / 2 ** 20 : 0;
  const stepMs = (CPU_STEP_MS_PER_GFLOP * 2 * f.trainMacsPerSample * batch) / 1e9;
  let k = 1;
  while (k < CPU_STEPS_PER_RUN && copyMs / (k * stepMs + copyMs) > CPU_COPY_SHARE) k++;
  if (k > 1 || 2 * stepMs < CPU_RUN_MS) k = Math.max(k, Math.min(MAX_STEPS_PER_RUN, Math.ceil(CPU_RUN_MS / stepMs)));
  return { k: Math.min(k, stopBound(stepMs)), copyMs, stepMs };
}

interface StepsPlan {
  k: number;
  /** Why this K, for the log. */
  reason: string;
}

/**
 * Default K for a device: on the CPU from the measured costs of the update path taken (cpuStepsPerRun;
 * `update` as TrainingConfig.update, default native where built); 1 on WebGPU (no Loop kernel); on
 * CUDA the largest K ≤ 16 whose stacked batches fit beside the step in device memory, and whose run takes about a second at most (stopBound).
 */
export function defaultStepsPerRun(
  device: Device,
  t: {
    model: string;
    modelOptions: Partial<ModelOptions>;
    batch: number;
    optimizer: OptimizerConfig;
    update?: 'native' | 'graph' | undefined;
  },
  deviceBytes: number | undefined = device.kind === 'cuda' ? cudaMemoryBytes(device.id) : undefined,
): StepsPlan {
  if (device.kind === 'cpu') {
    const update = updatePath(true, t.update);
    const c = cpuStepsPerRun(stepFootprint(t.model, t.modelOptions, t.optimizer), t.batch, update);
    const step = `~${Math.round(c.stepMs)} ms per step`;
    const why =
      update === 'native'
        ? `updated in place: a run moves only its batches, ${step}`
        : `parameters and state take ~${Math.round(c.copyMs)} ms to move per run against ${step}`;
    return { k: c.k, reason: why };
  }
  if (device.kind === 'webgpu') return { k: 1, reason: 'WebGPU has no Loop kernel' };
  const bytes = deviceBytes ?? ASSUMED_CUDA_BYTES;
  const f = stepFootprint(t.model, t.modelOptions, t.optimizer);
  const stepMs = (CUDA_STEP_MS_PER_GFLOP * 2 * f.trainMacsPerSample * t.batch) / 1e9;
  const k = Math.min(stepsPerRunFor(f, t.batch, bytes), stopBound(stepMs));
  const est = stepMemory(f, t.batch, k).total;
  const gib = (b: number) => (b / 2 ** 30).toFixed(1);
  return {
    k,
    reason:
      `${gib(est)} GiB estimated for ${k} steps per run of ${gib(bytes)} GiB${deviceBytes === undefined ? ' (assumed: nvidia-smi not found)' : ''}` +
      (k === stopBound(stepMs) && k < MAX_STEPS_PER_RUN ? `; ~${Math.round(stepMs)} ms per step, runs kept to about a second` : ''),
  };
}
