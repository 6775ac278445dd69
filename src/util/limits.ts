/**
 * Bounds on the counts a user gives, from the machine (src/util/budget.ts: its cores and the memory
 * a run may use). Every command checks its thread, worker and batch counts here before it starts a
 * thread, a session or a batch, so a flag is refused in one line instead of growing the process
 * until the kernel kills it. The absolute ceiling (MAX_COUNT) is the parsers' (src/cli/options.ts).
 */
import { formatBytes, machineBudget, requireMemory } from './budget.js';
import { UsageError } from './errors.js';

/**
 * The most any count flag may give: far beyond real use (a million classes, steps per run,
 * images per batch), small enough that no count alone runs a loop or an array without bound.
 */
export const MAX_COUNT = 2 ** 20;

/**
 * Threads per core a flag may ask for. Oversubscribing ORT's intra-op pool or the loader's is
 * legal (and how one measures it), but past a few per core it only adds stacks and contention;
 * a million threads took 21.7 GB before the OOM killer ended the process.
 */
const THREADS_PER_CORE = 4;

/**
 * Memory of one loader worker thread (a V8 isolate, sharp, its scratch): `ilsvrc train` with
 * --workers 8 (two pools, train and val: 16 threads) peaked 330 MB above --workers 0.
 */
const LOADER_THREAD_BYTES = 24 * 2 ** 20;

/** The most threads a flag may ask on this machine. */
function maxThreads(): number {
  return THREADS_PER_CORE * machineBudget().cores;
}

/** Refuses a thread count (0: "all cores") above THREADS_PER_CORE × cores, naming the flag. */
export function requireThreads(flag: string, n: number): void {
  const max = maxThreads();
  if (n > max) {
    const { cores } = machineBudget();
    const why = `${THREADS_PER_CORE} × the ${cores} core${cores === 1 ? '' : 's'} of this machine`;
    throw new UsageError(`Expected at most ${max} for ${flag} (${why}) but received ${n}`);
  }
}

/** Refuses a loader worker count above the thread bound, or whose `pools` × n threads do not fit the memory budget. */
export function requireWorkers(flag: string, n: number, pools = 1): void {
  requireThreads(flag, n);
  const what = `${flag} ${n} (${pools > 1 ? `${pools} pools × ` : ''}${n} threads × ${formatBytes(LOADER_THREAD_BYTES)})`;
  requireMemory(pools * n * LOADER_THREAD_BYTES, what, `fewer ${flag}`);
}

/**
 * Refuses `n` items per batch (images, crops, occluded copies) of `perItem` bytes each, on top of
 * `fixed` bytes, when they do not fit the memory budget; `what` names the flag and what it sizes.
 */
export function requireBatchMemory(flag: string, n: number, perItem: number, what: string, fixed = 0): void {
  requireMemory(fixed + n * perItem, `${flag} ${n} (${what}, ~${formatBytes(perItem)} each)`, `a smaller ${flag}`);
}
