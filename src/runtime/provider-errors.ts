/** A provider that failed to start, said in one line naming --device and what to do. */
import { UsageError } from '../util/errors.js';
import { CUDA_INSTALL_HINT } from './cuda-libraries.js';
import type { Device } from './device-spec.js';

/** A one-line message for a provider that failed to start, or undefined when `e` is something else. */
export function rephraseProviderError(e: unknown, device: Device): UsageError | undefined {
  const msg = e instanceof Error ? e.message : String(e);
  if (device.kind === 'cuda') {
    if (/Failed to load shared library|cannot open shared object|providers_cuda|providers_shared/i.test(msg)) {
      return new UsageError(
        `--device ${device.text}: onnxruntime could not load its CUDA provider (${firstLine(msg)}): ${CUDA_INSTALL_HINT}`,
      );
    }
    if (
      /no CUDA-capable device|invalid device ordinal|CUDA driver version is insufficient|cudaErrorNoDevice|cudaErrorInvalidDevice/i.test(
        msg,
      )
    ) {
      return new UsageError(
        `--device ${device.text}: no usable CUDA device ${device.id} (${firstLine(msg)}); with Docker, pass --gpus all`,
      );
    }
  }
  if (device.kind === 'webgpu' && /adapter/i.test(msg)) {
    return new UsageError(
      `--device webgpu: no WebGPU adapter was found (a GPU with a Vulkan driver and libvulkan.so.1 is needed); use --device cpu or cuda`,
    );
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
