/**
 * What this machine can give a run: its cores and the memory it can still hand out. Every count a
 * user gives (threads, workers, batch × input size, steps per run, classes, grid sizes) and every
 * file read whole is checked against it before any work, so a flag cannot grow a process until
 * the kernel kills it. `ILSVRC_MEMORY_BUDGET` (bytes, or with a K/M/G suffix) sets the memory
 * figure instead of measuring it — for tests, and for users sharing a machine.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, freemem } from 'node:os';
import { UsageError } from './errors.js';

interface MachineBudget {
  /** Cores this process may run on. */
  cores: number;
  /** Bytes of memory a run may use: what the machine (or its cgroup) has free, less a margin. */
  memory: number;
  /** Where `memory` came from, for messages ("MemAvailable", "cgroup limit", "ILSVRC_MEMORY_BUDGET"). */
  memorySource: string;
}

/** The share of the available memory a run may plan to use: the rest is left to the OS and other processes. */
const MEMORY_SHARE = 0.8;

/** Parses "512M", "2G", "1048576"; undefined for anything else. */
function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  if (!m) return undefined;
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const v = Number(m[1]) * scale;
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : undefined;
}

function readNumber(path: string): number | undefined {
  try {
    const v = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(v) && v > 0 ? v : undefined;
  } catch {
    return undefined; // absent ("max") or not Linux
  }
}

function memAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}

let cached: MachineBudget | undefined;

/** The machine's budget, measured once per process. */
export function machineBudget(): MachineBudget {
  if (cached) return cached;
  const cores = Math.max(1, availableParallelism());
  const env = process.env['ILSVRC_MEMORY_BUDGET'];
  if (env !== undefined && env !== '') {
    const bytes = parseBytes(env);
    if (bytes === undefined)
      throw new UsageError(`Expected a size in bytes (e.g. 512M, 4G) for ILSVRC_MEMORY_BUDGET but received ${JSON.stringify(env)}`);
    return (cached = { cores, memory: bytes, memorySource: 'ILSVRC_MEMORY_BUDGET' });
  }
  let free = memAvailable();
  let source = 'available memory';
  // A container's limit (cgroup v2, then v1) is what the OOM killer enforces.
  const limit = readNumber('/sys/fs/cgroup/memory.max') ?? readNumber('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  if (limit !== undefined && limit < 2 ** 60) {
    const used = readNumber('/sys/fs/cgroup/memory.current') ?? readNumber('/sys/fs/cgroup/memory/memory.usage_in_bytes') ?? 0;
    if (limit - used < free) {
      free = Math.max(0, limit - used);
      source = 'cgroup memory limit';
    }
  }
  return (cached = { cores, memory: Math.floor(free * MEMORY_SHARE), memorySource: source });
}

/** "1.5 GB" */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KB`;
  return `${n} B`;
}

/**
 * Refuses work that needs more memory than the budget, in one line naming what it is for:
 * "Expected <what> to fit the memory budget (3.2 GB of available memory) but it needs 9.3 GB; …".
 */
export function requireMemory(bytes: number, what: string, hint = ''): void {
  const b = machineBudget();
  if (bytes > b.memory) {
    // The variable's figure is the budget itself; a measured one is shared.
    const from = b.memorySource === 'ILSVRC_MEMORY_BUDGET' ? b.memorySource : `80% of the ${b.memorySource}`;
    throw new UsageError(
      `Expected ${what} to fit the memory budget (${formatBytes(b.memory)}, ${from}) but it needs ${formatBytes(bytes)}${hint ? `; ${hint}` : ''}`,
    );
  }
}
