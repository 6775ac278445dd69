/**
 * `--device cpu | cuda[:N] | webgpu`: which execution provider the sessions run on, checked before
 * onnxruntime touches a provider library, so that a user sees one line saying what to do rather
 * than a loader error.
 *
 * - cuda: the provider libraries are not in the npm tarball (`.npmrc` skips the NuGet download);
 *   their absence, and system libraries they need (CUDA, cuDNN) that `ldd` cannot find, are
 *   reported with the install hint. `session.disable_cpu_ep_fallback` is on, and a graph is checked
 *   against the provider's kernel table before its session is created, so an op without a CUDA
 *   kernel is an error naming the op. Steps per run (the Loop's K) default from device memory.
 * - webgpu: no Loop kernel, so one step per run; MaxPool nodes with the Indices output fail at run
 *   time there and are pinned to the CPU by name (`forceCpuNodeNames`); the other ops without a
 *   WebGPU kernel (LRN, Dropout, …) fall back to the CPU, so fallback stays allowed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type ort from 'onnxruntime-node';
import { buildModel, type ModelOptions } from '../../graphs/index.js';
import { sizeOf } from '../graph/dtype.js';
import { trainingMacs } from '../graph/summary.js';
import { encodeModel, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js';
import { stateSuffixes, type OptimizerConfig } from '../optim/optimizer.js';
import { expected, UsageError } from '../util/errors.js';
import { createSession, tensor, type OrtSession, type SessionOptions } from './ort.js';
import { unsupportedOps, type Provider } from './providers.js';

export interface Device {
  kind: Provider;
  /** CUDA device ordinal (0 elsewhere). */
  id: number;
  /** As the user wrote it, for messages. */
  text: string;
}

/** Parses `cpu`, `cuda`, `cuda:N` or `webgpu` (the value of --device). */
export function parseDevice(text: string): Device {
  const t = text.trim().toLowerCase();
  if (t === 'cpu' || t === 'webgpu') return { kind: t, id: 0, text: t };
  const m = /^cuda(?::(\d{1,3}))?$/.exec(t);
  if (m) return { kind: 'cuda', id: m[1] === undefined ? 0 : Number(m[1]), text: t };
  throw expected('cpu, cuda, cuda:N or webgpu', '--device', text);
}

/** The provider libraries onnxruntime loads for CUDA, in load order. */
export const CUDA_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

export const CUDA_INSTALL_HINT =
  'install them with `npm ci --onnxruntime-node-install=cuda12` (downloads them from NuGet), or run the Docker image (README "GPU and Docker")';

/** The folder holding onnxruntime-node's native binding (and, once installed, the CUDA provider). */
export function bindingDir(): string {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** CUDA provider libraries absent from `dir`. */
export function missingCudaLibraries(dir: string = bindingDir()): string[] {
  return CUDA_LIBRARIES.filter((f) => !existsSync(join(dir, f)));
}

/**
 * Libraries that `ldd` reports "not found" for `file` (e.g. libcudnn.so.9), or undefined when ldd
 * itself cannot run (no ldd on this system): then onnxruntime's own load error is rephrased instead.
 */
export function unresolvedLibraries(file: string, env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  let out: string;
  try {
    out = execFileSync('ldd', [file], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch {
    return undefined;
  }
  return parseLdd(out);
}

/** The "not found" names of ldd's output. */
export function parseLdd(out: string): string[] {
  const missing = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+)\s+=>\s+not found/.exec(line);
    if (m?.[1]) missing.add(m[1]);
  }
  return [...missing];
}

export interface ResolvedDevice {
  device: Device;
  /** Options for createSession / TrainingConfig.session (structured-clone safe: plain data). */
  session: SessionOptions;
}

export interface ResolveOptions {
  /** ORT intra-op threads (0 or absent: all cores). */
  threads?: number;
  /** Where the CUDA provider libraries should be (default: beside the binding). */
  bindingDir?: string;
  /** Skip the `ldd` check of the CUDA provider (tests with a stand-in folder). */
  skipLdd?: boolean;
}

/**
 * Session options for a device, after checking what can be checked without loading a provider.
 * Throws a UsageError for a bad spec, and for CUDA when its libraries are missing.
 */
export function resolveDevice(spec: string | Device, o: ResolveOptions = {}): ResolvedDevice {
  const device = typeof spec === 'string' ? parseDevice(spec) : spec;
  const threads = o.threads && o.threads > 0 ? { threads: o.threads } : {};
  switch (device.kind) {
    case 'cpu':
      return { device, session: { ...threads, providers: ['cpu'] } };
    case 'cuda': {
      const dir = o.bindingDir ?? bindingDir();
      const missing = missingCudaLibraries(dir);
      if (missing.length) {
        throw new UsageError(`--device ${device.text} needs the CUDA provider of onnxruntime-node, but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not in ${dir}: ${CUDA_INSTALL_HINT}`);
      }
      if (!o.skipLdd) {
        const lib = join(dir, 'libonnxruntime_providers_cuda.so');
        const unresolved = unresolvedLibraries(lib);
        if (unresolved?.length) {
          throw new UsageError(
            `--device ${device.text}: the CUDA provider needs ${unresolved.join(', ')}, which the loader cannot find (CUDA and cuDNN 9 runtime libraries on LD_LIBRARY_PATH): install them, or run the Docker image (README "GPU and Docker")`,
          );
        }
      }
      return {
        device,
        session: { ...threads, providers: [{ name: 'cuda', deviceId: device.id }], extra: { 'session.disable_cpu_ep_fallback': '1' } },
      };
    }
    case 'webgpu':
      return { device, session: { ...threads, providers: [{ name: 'webgpu' }] } };
  }
}

/** The provider a session's options put first (cpu when none). */
export function providerOf(o: SessionOptions): Provider {
  const first = o.providers?.[0];
  const name = typeof first === 'string' ? first : first?.name;
  return name === 'cuda' || name === 'webgpu' ? name : 'cpu';
}

/** Names of the nodes (subgraphs included) that WebGPU must leave to the CPU: MaxPool with Indices. */
export function webgpuCpuNodes(model: ModelProto): string[] {
  const out: string[] = [];
  const visit = (g: GraphProto): void => {
    for (const n of g.node) {
      if (n.opType === 'MaxPool' && n.output.length > 1 && n.output[1] && n.name) out.push(n.name);
      for (const a of n.attribute ?? []) if (a.g) visit(a.g);
    }
  };
  visit(model.graph);
  return out;
}

/**
 * WebGPU has no Sum kernel, so ORT would run every Sum (the SGD update's, over parameter-sized
 * tensors) on the CPU and copy its inputs and output across the bus; measured on an H100, those
 * copies were 83 % of an AlexNet step. Each Sum becomes a chain of Adds, which WebGPU runs.
 */
export function sumsAsAdds(model: ModelProto): ModelProto {
  const rewrite = (g: GraphProto): GraphProto => ({
    ...g,
    node: g.node.flatMap((n): NodeProto[] => {
      const node = { ...n, attribute: (n.attribute ?? []).map((a) => (a.g ? { ...a, g: rewrite(a.g) } : a)) };
      if (n.opType !== 'Sum' || (n.domain ?? '') !== '' || n.input.length < 2) return [node];
      const out = n.output[0] ?? '';
      const base = n.name || out;
      let acc = n.input[0] ?? '';
      return n.input.slice(1).map((x, i, rest) => {
        const y = i === rest.length - 1 ? out : `${out}/sum${i}`;
        const add: NodeProto = { opType: 'Add', name: `${base}/add${i}`, input: [acc, x], output: [y], attribute: [] };
        acc = y;
        return add;
      });
    }),
  });
  return { ...model, graph: rewrite(model.graph) };
}

/**
 * Session options for one model on its device: on CUDA, an op without a kernel is an error naming
 * the op (before ORT reports a nameless fallback error); on WebGPU, the MaxPool-with-indices nodes
 * are pinned to the CPU by name.
 */
export function sessionOptionsFor(o: SessionOptions, model: ModelProto): SessionOptions {
  const provider = providerOf(o);
  if (provider === 'cuda') {
    const bad = unsupportedOps(model, provider);
    if (bad.length) throw new Error(`${model.graph.name || 'the graph'} uses ${bad.join(', ')}, which the CUDA execution provider has no kernel for`);
    return o;
  }
  if (provider !== 'webgpu') return o;
  const pinned = webgpuCpuNodes(model);
  if (!pinned.length) return o;
  const providers = (o.providers ?? []).map((p) =>
    typeof p !== 'string' && p.name === 'webgpu' ? ({ ...p, forceCpuNodeNames: pinned } as ort.InferenceSession.ExecutionProviderConfig) : p,
  );
  return { ...o, providers };
}

/** A one-line message for a provider that failed to start, or undefined when `e` is something else. */
export function rephraseProviderError(e: unknown, device: Device): UsageError | undefined {
  const msg = e instanceof Error ? e.message : String(e);
  if (device.kind === 'cuda') {
    if (/Failed to load shared library|cannot open shared object|providers_cuda|providers_shared/i.test(msg)) {
      return new UsageError(`--device ${device.text}: onnxruntime could not load its CUDA provider (${firstLine(msg)}): ${CUDA_INSTALL_HINT}`);
    }
    if (/no CUDA-capable device|invalid device ordinal|CUDA driver version is insufficient|cudaErrorNoDevice|cudaErrorInvalidDevice/i.test(msg)) {
      return new UsageError(`--device ${device.text}: no usable CUDA device ${device.id} (${firstLine(msg)}); with Docker, pass --gpus all`);
    }
  }
  if (device.kind === 'webgpu' && /adapter/i.test(msg)) {
    return new UsageError(`--device webgpu: no WebGPU adapter was found (a GPU with a Vulkan driver and libvulkan.so.1 is needed); use --device cpu or cuda`);
  }
  if (/disable_cpu_ep_fallback|fallback to CPU EP has been explicitly disabled/i.test(msg)) {
    return new UsageError(`--device ${device.text}: the graph has nodes without a ${device.kind.toUpperCase()} kernel (${firstLine(msg)})`);
  }
  return undefined;
}

function firstLine(s: string): string {
  const line = (s.split('\n').find((l) => l.trim()) ?? s).trim();
  const cut = line.replace(/^.*\[ONNXRuntimeError\] : \d+ : \w+ : /, '');
  return cut.length > 200 ? `${cut.slice(0, 197)}...` : cut;
}

/** createSession for a model on its device: kernel checks first, provider failures rephrased. */
export async function createDeviceSession(model: ModelProto, o: SessionOptions, device?: Device): Promise<OrtSession> {
  if (providerOf(o) === 'webgpu') model = sumsAsAdds(model);
  const opts = sessionOptionsFor(o, model);
  try {
    return await createSession(encodeModel(model), opts);
  } catch (e) {
    const provider = providerOf(o);
    throw rephraseProviderError(e, device ?? { kind: provider, id: 0, text: provider }) ?? e;
  }
}

/** One Relu on a [2] tensor: enough to make a provider load and find its device. */
function probeModel(): ModelProto {
  const vi = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } });
  return {
    irVersion: 8,
    opsetImport: [{ version: 18 }],
    producerName: 'ilsvrc',
    graph: { name: 'probe', node: [{ opType: 'Relu', name: 'probe_relu', input: ['x'], output: ['y'] }], input: [vi('x')], output: [vi('y')] },
  };
}

/**
 * Starts the device's provider once with a one-node model and runs it, so that a missing library,
 * device or adapter is a UsageError before any training graph is built. Resolves for the CPU at once.
 */
export async function probeDevice(r: ResolvedDevice): Promise<void> {
  if (r.device.kind === 'cpu') return;
  const s = await createDeviceSession(probeModel(), r.session, r.device);
  try {
    const out = await s.run({ x: tensor('float32', new Float32Array([-1, 2]), [2]) });
    const y = out['y']?.data as Float32Array | undefined;
    if (!y || y[0] !== 0 || y[1] !== 2) throw new Error(`the ${r.device.kind} provider computed Relu([-1, 2]) = ${y ? `[${[...y].join(', ')}]` : 'nothing'}`);
  } catch (e) {
    throw rephraseProviderError(e, r.device) ?? e;
  } finally {
    await s.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Steps per run (K) on a device from a memory estimate.

/** Float counts of one training step of a model (per sample where it scales with the batch). */
export interface StepFootprint {
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

export function stepFootprint(model: string, modelOptions: Partial<ModelOptions>, optimizer: OptimizerConfig): StepFootprint {
  const built = buildModel(model, { ...modelOptions, aux: modelOptions.aux ?? false }, { training: true, batch: 1 });
  const g = built.graph;
  const params = g.params.reduce((a, p) => a + p.value.size, 0);
  let activations = 0;
  for (const n of g.nodes) for (const v of n.outputs) activations += v.size;
  const inputs = g.inputs.reduce((a, v) => a + sizeOf(v.shape), 0);
  const trainMacsPerSample = trainingMacs(g, [built.logits, ...built.aux.map((a) => a.logits)]).training;
  return { params, state: params * stateSuffixes(optimizer).length, activationsPerSample: activations, inputsPerSample: inputs, trainMacsPerSample };
}

/**
 * Bytes one run of K steps needs on the device, by parts. The Loop holds parameters and state as
 * fed inputs, loop-carried values and outputs (≈ 3 copies, the CPU measurement in the design notes),
 * plus one set of gradients; activations are kept for backward and about doubled by the gradients
 * flowing back; the K stacked batches sit on the device for the whole run.
 */
export function stepMemory(f: StepFootprint, batch: number, k: number): { fixed: number; perStep: number; total: number } {
  const B = 4;
  const fixed = B * (3 * (f.params + f.state) + f.params) + B * 3 * f.activationsPerSample * batch + CUDA_OVERHEAD;
  const perStep = B * f.inputsPerSample * batch + 8 * batch;
  return { fixed, perStep, total: fixed + k * perStep };
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

/** Assumed when nvidia-smi cannot say: a small card, so K stays safe. */
export const ASSUMED_CUDA_BYTES = 8 * 2 ** 30;

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
 * K on the CPU: the fewest steps per run (each one more holds more memory: the Loop keeps copies of
 * the loop-carried parameters and state) that bring the parameter round trip under 8 % of the run,
 * at most CPU_STEPS_PER_RUN; and when even those runs are short (small models, small images), as
 * many as fill CPU_RUN_MS, at most MAX_STEPS_PER_RUN — their parameters and batches are small, so
 * the Loop's copies cost little. NIN and GoogLeNet at 224 px get 1, AlexNet and VGG-A at small
 * batches 4, VGG-D at batch 32 1 (its 30 s step dwarfs the copy), VGG-A width 1/4 at 32 px 13.
 */
export function cpuStepsPerRun(f: StepFootprint, batch: number): { k: number; copyMs: number; stepMs: number } {
  const copyMs = (CPU_COPY_MS_PER_MB * 4 * (f.params + f.state)) / 2 ** 20;
  const stepMs = (CPU_STEP_MS_PER_GFLOP * 2 * f.trainMacsPerSample * batch) / 1e9;
  let k = 1;
  while (k < CPU_STEPS_PER_RUN && copyMs / (k * stepMs + copyMs) > CPU_COPY_SHARE) k++;
  if (k > 1 || 2 * stepMs < CPU_RUN_MS) k = Math.max(k, Math.min(MAX_STEPS_PER_RUN, Math.ceil(CPU_RUN_MS / stepMs)));
  return { k, copyMs, stepMs };
}

export interface StepsPlan {
  k: number;
  /** Why this K, for the log. */
  reason: string;
}

/**
 * Default K for a device: on the CPU from the measured costs (cpuStepsPerRun); 1 on WebGPU (no Loop kernel); on CUDA the largest
 * K ≤ 16 whose stacked batches fit beside the step in device memory.
 */
export function defaultStepsPerRun(
  device: Device,
  t: { model: string; modelOptions: Partial<ModelOptions>; batch: number; optimizer: OptimizerConfig },
  deviceBytes: number | undefined = device.kind === 'cuda' ? cudaMemoryBytes(device.id) : undefined,
): StepsPlan {
  if (device.kind === 'cpu') {
    const c = cpuStepsPerRun(stepFootprint(t.model, t.modelOptions, t.optimizer), t.batch);
    return { k: c.k, reason: `parameters and state take ~${Math.round(c.copyMs)} ms to move per run against ~${Math.round(c.stepMs)} ms per step` };
  }
  if (device.kind === 'webgpu') return { k: 1, reason: 'WebGPU has no Loop kernel' };
  const bytes = deviceBytes ?? ASSUMED_CUDA_BYTES;
  const f = stepFootprint(t.model, t.modelOptions, t.optimizer);
  const k = stepsPerRunFor(f, t.batch, bytes);
  const est = stepMemory(f, t.batch, k).total;
  const gib = (b: number) => (b / 2 ** 30).toFixed(1);
  return {
    k,
    reason: `${gib(est)} GiB estimated for ${k} steps per run of ${gib(bytes)} GiB${deviceBytes === undefined ? ' (assumed: nvidia-smi not found)' : ''}`,
  };
}

