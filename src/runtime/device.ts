/**
 * `--device cpu | cuda[:N] | webgpu`: which execution provider the sessions run on, checked before
 * onnxruntime touches a provider library, so that a user sees one line saying what to do rather
 * than a loader error. One module per job: parsing (device-spec.ts), whether the CUDA provider can
 * load (cuda-libraries.ts), session options (session-options.ts), the provider's lowerings
 * (lower/), and rephrased provider errors (provider-errors.ts); here, the session that joins them.
 * Steps per run (the Loop's K) default from device memory (src/train/steps-per-run.ts).
 */
import { encodeModel, type ModelProto } from '../onnx/proto.js';
import type { Device } from './device-spec.js';
import { lowerFor } from './lower/index.js';
import { createSession, tensor, type OrtSession, type SessionOptions } from './ort.js';
import { rephraseProviderError } from './provider-errors.js';
import { providerOf, sessionOptionsFor, type ResolvedDevice } from './session-options.js';

export { parseDevice, type Device } from './device-spec.js';
export { bindingDir, CUDA_INSTALL_HINT, CUDA_LIBRARIES, missingCudaLibraries, parseLdd, unresolvedLibraries } from './cuda-libraries.js';
export {
  providerOf,
  resolveDevice,
  sessionOptionsFor,
  webgpuCpuNodes,
  type ResolvedDevice,
  type ResolveOptions,
} from './session-options.js';
export { rephraseProviderError } from './provider-errors.js';

/**
 * createSession for a model on its device: lowered for the provider (src/runtime/lower/), kernel
 * checks first, provider failures rephrased.
 */
export async function createDeviceSession(model: ModelProto, o: SessionOptions, device?: Device): Promise<OrtSession> {
  const provider = providerOf(o);
  model = await lowerFor(model, provider);
  const opts = sessionOptionsFor(o, model);
  try {
    return await createSession(encodeModel(model), opts);
  } catch (e) {
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
    graph: {
      name: 'probe',
      node: [{ opType: 'Relu', name: 'probe_relu', input: ['x'], output: ['y'] }],
      input: [vi('x')],
      output: [vi('y')],
    },
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
    if (!y || y[0] !== 0 || y[1] !== 2)
      throw new Error(`the ${r.device.kind} provider computed Relu([-1, 2]) = ${y ? `[${[...y].join(', ')}]` : 'nothing'}`);
  } catch (e) {
    throw rephraseProviderError(e, r.device) ?? e;
  } finally {
    await s.release();
  }
}
