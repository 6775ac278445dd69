/**
 * What the benchmark scripts print about the machine and the PyTorch peer they compare against, so
 * that a ratio can be read: the CPU model and its vector ISA, the peer's version and the BLAS /
 * oneDNN it runs on, and environment variables that change the peer's kernels.
 *
 * The peer is the newest PyTorch available: the interpreter named by ILSVRC_PEER_PYTHON, else
 * .venv-peer/bin/python at the repository root (a pip-installed current PyTorch, README
 * "Benchmarks"), else Debian's /usr/bin/python3 with python3-torch.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (scripts are compiled to dist/scripts). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A Python script beside this one in the source tree (scripts/NAME). */
export function peerScript(name: string): string {
  return path.join(REPO, 'scripts', name);
}

/** The Python interpreter that runs the peers, and where that choice came from. */
export function peerPython(env: NodeJS.ProcessEnv = process.env): { python: string; from: string } {
  const named = env['ILSVRC_PEER_PYTHON'];
  if (named) return { python: named, from: 'ILSVRC_PEER_PYTHON' };
  const venv = path.join(REPO, '.venv-peer', 'bin', 'python');
  if (existsSync(venv)) return { python: venv, from: '.venv-peer' };
  return { python: '/usr/bin/python3', from: 'Debian python3-torch' };
}

/** ISA flags that decide which kernels the libraries pick. */
const ISA = [
  'sse4_2',
  'avx',
  'avx2',
  'fma',
  'f16c',
  'avx512f',
  'avx512bw',
  'avx512vl',
  'avx512_vnni',
  'avx512_bf16',
  'avx_vnni',
  'amx_tile',
  'amx_bf16',
  'amx_int8',
];

export interface CpuInfo {
  model: string;
  cores: number;
  isa: string[];
}

/** The CPU model and the ISA flags of /proc/cpuinfo that matter to BLAS and oneDNN. */
export function cpuInfo(cpuinfo: string = readCpuinfo()): CpuInfo {
  const field = (name: string): string => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim() ?? '';
  const flags = new Set(field('flags').split(/\s+/));
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  return { model: field('model name') || 'unknown', cores, isa: ISA.filter((f) => flags.has(f)) };
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

/** Environment variables that force a peer's kernels or threads; a run under them says so. */
const FORCING = [
  'OPENBLAS_CORETYPE',
  'OPENBLAS_L2_SIZE',
  'OPENBLAS_NUM_THREADS',
  'OMP_NUM_THREADS',
  'MKL_NUM_THREADS',
  'MKL_ENABLE_INSTRUCTIONS',
  'ONEDNN_MAX_CPU_ISA',
  'DNNL_MAX_CPU_ISA',
  'ATEN_CPU_CAPABILITY',
];

export function forcedEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(FORCING.filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]!]));
}

export interface PeerInfo {
  python: string;
  from: string;
  torch: string | null;
  /** BLAS the build links (BLAS_INFO of torch.__config__.show()). */
  blas: string | null;
  /** BLAS shared libraries mapped after a matrix product (Debian's "generic" is whatever libblas.so.3 points at). */
  blasLibs: string[];
  /** oneDNN (MKL-DNN) version when torch.backends.mkldnn is available. */
  onednn: string | null;
  /** ATen's CPU capability (the vector ISA its own kernels run). */
  capability: string | null;
  /** Why there is no peer, when `torch` is null. */
  error?: string;
}

const PROBE = `
import json, re, torch
cfg = torch.__config__.show()
def find(p):
    m = re.search(p, cfg)
    return m.group(1).strip() if m else None
cap = None
try:
    cap = torch.backends.cpu.get_cpu_capability()
except Exception:
    cap = find(r'CPU capability usage: (\\S+)')
dnn = find(r'MKL-DNN (v[0-9.]+)') if torch.backends.mkldnn.is_available() else None
torch.randn(64, 64) @ torch.randn(64, 64)
libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if re.search(r'(openblas|libmkl|blis|libblas|libcblas)', l) and 'numpy.libs' not in l})  # numpy's own BLAS is not torch's
print(json.dumps({'torch': torch.__version__, 'blas': find(r'BLAS_INFO=([^,]+)'), 'blasLibs': libs, 'onednn': dnn, 'capability': cap}))
`;

/** The peer's PyTorch version and the libraries under it; `torch: null` (and why) when it cannot import torch. */
export function peerInfo(env: NodeJS.ProcessEnv = process.env): PeerInfo {
  const { python, from } = peerPython(env);
  const r = spawnSync(python, ['-c', PROBE], { encoding: 'utf8', env, timeout: 120_000 });
  const none = { python, from, torch: null, blas: null, blasLibs: [], onednn: null, capability: null };
  if (r.status !== 0)
    return { ...none, error: (r.error?.message ?? r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`).slice(0, 300) };
  try {
    return { python, from, ...(JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Omit<PeerInfo, 'python' | 'from'>) };
  } catch {
    return { ...none, error: `unreadable probe output: ${r.stdout.slice(0, 200)}` };
  }
}

/** The lines every benchmark prints first: machine, peer, and forcing variables. */
export function describeSetup(cpu: CpuInfo, peer: PeerInfo, forced: Record<string, string>): string[] {
  const lines = [`cpu: ${cpu.model}, ${cpu.cores} cores, ISA ${cpu.isa.join(' ') || 'unknown'}`];
  lines.push(
    peer.torch
      ? `peer: PyTorch ${peer.torch} (${peer.from}: ${peer.python}), BLAS ${peer.blas ?? '?'}${peer.blasLibs.length ? ` (${peer.blasLibs.join(', ')})` : ''}, oneDNN ${peer.onednn ?? 'off'}, ATen CPU capability ${peer.capability ?? '?'}`
      : `peer: none (${peer.python} cannot import torch: ${peer.error ?? '?'}); peer columns are null`,
  );
  const keys = Object.keys(forced);
  if (keys.length) {
    const blasNote = [peer.blas ?? '', ...peer.blasLibs].some((b) => /openblas/i.test(b))
      ? 'the peer links OpenBLAS, so these choose its kernels'
      : 'the peer does not link OpenBLAS; OPENBLAS_* do not touch it';
    lines.push(`environment forces ${keys.map((k) => `${k}=${forced[k]}`).join(' ')} (${blasNote})`);
  }
  return lines;
}

/** Everything above as one object for the scripts' JSON line. */
export function setup(env: NodeJS.ProcessEnv = process.env): { cpu: CpuInfo; peer: PeerInfo; forced_env: Record<string, string> } {
  return { cpu: cpuInfo(), peer: peerInfo(env), forced_env: forcedEnv(env) };
}
