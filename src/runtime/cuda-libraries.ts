/**
 * Whether the CUDA provider can load: its libraries are not in the npm tarball (ilsvrc's preinstall and
 * `.npmrc` skip the NuGet download), and system libraries they need (CUDA, cuDNN) may be missing; both are reported
 * with the install hint before onnxruntime touches the provider.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The provider libraries onnxruntime loads for CUDA, in load order. */
export const CUDA_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

export const CUDA_INSTALL_HINT =
  'install them with `ONNXRUNTIME_NODE_INSTALL=true npm rebuild onnxruntime-node` (downloads them from NuGet), or run the Docker image (README "GPU and Docker")';

/** The folder holding onnxruntime-node's native binding (and, once installed, the CUDA provider). */
export function bindingDir(): string {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** CUDA provider libraries absent from `dir`; an empty one is the placeholder install/cuda-opt-in.cjs leaves instead of the download. */
export function missingCudaLibraries(dir: string = bindingDir()): string[] {
  return CUDA_LIBRARIES.filter((f) => !statSync(join(dir, f), { throwIfNoEntry: false })?.size);
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
