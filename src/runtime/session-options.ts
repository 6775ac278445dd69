/**
 * Session options per device: cuda turns `session.disable_cpu_ep_fallback` on, and a graph is checked
 * against the provider's kernel table before its session is created, so an op without a CUDA kernel
 * is an error naming the op; on webgpu, MaxPool nodes with the Indices output fail at run time and
 * are pinned to the CPU by name (`forceCpuNodeNames`), while the other ops without a WebGPU kernel
 * (LRN, Dropout, …) fall back to the CPU, so fallback stays allowed.
 */
import { join } from 'node:path';
import type ort from 'onnxruntime-node';
import type { GraphProto, ModelProto } from '../onnx/proto.js';
import { UsageError } from '../util/errors.js';
import { bindingDir, CUDA_INSTALL_HINT, missingCudaLibraries, unresolvedLibraries } from './cuda-libraries.js';
import { parseDevice, type Device } from './device-spec.js';
import type { SessionOptions } from './ort.js';
import { unsupportedOps, type Provider } from './providers.js';

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
        throw new UsageError(
          `--device ${device.text} needs the CUDA provider of onnxruntime-node, but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not in ${dir}: ${CUDA_INSTALL_HINT}`,
        );
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
 * Session options for one model on its device: on CUDA, an op without a kernel is an error naming
 * the op (before ORT reports a nameless fallback error); on WebGPU, the MaxPool-with-indices nodes
 * are pinned to the CPU by name.
 */
export function sessionOptionsFor(o: SessionOptions, model: ModelProto): SessionOptions {
  const provider = providerOf(o);
  if (provider === 'cuda') {
    const bad = unsupportedOps(model, provider);
    if (bad.length)
      throw new Error(`${model.graph.name || 'the graph'} uses ${bad.join(', ')}, which the CUDA execution provider has no kernel for`);
    return o;
  }
  if (provider !== 'webgpu') return o;
  const pinned = webgpuCpuNodes(model);
  if (!pinned.length) return o;
  const providers = (o.providers ?? []).map((p) =>
    typeof p !== 'string' && p.name === 'webgpu'
      ? ({ ...p, forceCpuNodeNames: pinned } as ort.InferenceSession.ExecutionProviderConfig)
      : p,
  );
  return { ...o, providers };
}
