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
import { encodeModel, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js';
import { expected, UsageError } from '../util/errors.js';
import { nchwcBlockSize, nchwcConvs } from './nchwc.js';
import { unpoolGradients } from './unpool.js';
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
  'install them with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --ignore-scripts=false` (downloads them from NuGet), or run the Docker image (README "GPU and Docker")';

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

/** The channel block of the blocked-layout Conv kernels a session with these options runs (CPU only; 0: none). */
export async function convBlockFor(o: SessionOptions): Promise<number> {
  return providerOf(o) === 'cpu' ? nchwcBlockSize() : 0;
}

/** createSession for a model on its device: kernel checks first, provider failures rephrased. */
export async function createDeviceSession(model: ModelProto, o: SessionOptions, device?: Device): Promise<OrtSession> {
  if (providerOf(o) === 'webgpu') model = sumsAsAdds(model);
  // CPU only: the blocked Convs' kernels and MaxUnpool exist on no other provider.
  if (providerOf(o) === 'cpu') model = unpoolGradients(nchwcConvs(model, await convBlockFor(o)));
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
