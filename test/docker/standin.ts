/**
 * Stand-ins for onnxruntime's CUDA provider libraries, compiled with gcc: a "good" folder whose
 * libraries resolve, and a "broken" one whose CUDA provider links a library that no longer exists
 * (as a provider built for another CUDA major would). Undefined where gcc is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StandIns {
  good: string;
  broken: string;
  /** The library the broken provider needs and cannot find. */
  missing: string;
  cleanup(): void;
}

export function makeStandIns(): StandIns | undefined {
  if (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
  const root = mkdtempSync(join(tmpdir(), 'ilsvrc-ldd-'));
  const src = join(root, 'src');
  mkdirSync(src);
  const good = join(root, 'good');
  const broken = join(root, 'broken');
  mkdirSync(good);
  mkdirSync(broken);
  writeFileSync(join(src, 'dep.c'), 'int cuda_dep(void) { return 13; }\n');
  writeFileSync(join(src, 'cuda.c'), 'int cuda_dep(void);\nint provider(void) { return cuda_dep(); }\n');
  writeFileSync(join(src, 'shared.c'), 'int bridge(void) { return 1; }\n');
  const gcc = (...args: string[]) => execFileSync('gcc', ['-shared', '-fPIC', ...args], { stdio: 'pipe' });
  const missing = 'libilsvrc_cudart_standin.so';
  for (const dir of [good, broken]) {
    gcc('-o', join(dir, 'libonnxruntime_providers_shared.so'), join(src, 'shared.c'));
    gcc('-o', join(dir, missing), join(src, 'dep.c'));
    // RUNPATH $ORIGIN: the dependency resolves from the provider's own folder, as ORT's do.
    gcc(
      '-o',
      join(dir, 'libonnxruntime_providers_cuda.so'),
      join(src, 'cuda.c'),
      `-L${dir}`,
      '-lilsvrc_cudart_standin',
      '-Wl,-rpath,$ORIGIN',
      '-Wl,--no-as-needed',
    );
  }
  rmSync(join(broken, missing));
  return { good, broken, missing, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
