/**
 * The optimizer update in place, by native code (native/optim.c, built by scripts/build-native into
 * build/native/optim.node): parameters and optimizer state live once, in these Float32Arrays, and a
 * step only needs its gradients from ONNX Runtime. The arithmetic is applyUpdate's
 * (./optimizer.ts), op by op in float32, so the result is bit-identical to the update graph.
 *
 * Absent when the build had no C compiler or Node headers, or when ILSVRC_NATIVE_OPTIM=0; training
 * then runs the update as ONNX graphs (more copies of parameters and state in memory).
 */
import { nativeAddon } from '../util/native.js';
import { hyperValues, stateSuffixes, type OptimizerConfig } from './optimizer.js';

interface Addon {
  update(kind: number, w: Float32Array, g: Float32Array, s0: Float32Array | null, s1: Float32Array | null, hyper: Float64Array): void;
  updateOuter(
    kind: number,
    w: Float32Array,
    dy: Float32Array,
    x: Float32Array,
    s0: Float32Array | null,
    s1: Float32Array | null,
    hyper: Float64Array,
  ): void;
  setThreads(n: number): void;
  detach(a: Float32Array): boolean;
  retainFreedMemory(): boolean;
}

const load = nativeAddon<Addon>('optim', 'ILSVRC_NATIVE_OPTIM', 'the optimizer runs as ONNX graphs');

/** Whether the native update is built and enabled here. */
export function hasNativeOptimizer(): boolean {
  return load() !== null;
}

/**
 * Where a session's optimizer update runs: 'native' (in place) unless 'graph' is asked for, where
 * the session runs on the CPU alone and the addon is built; else 'graph' (ONNX graphs). The
 * session and the planner of steps per run both read it, so K is planned for the path taken.
 */
export function updatePath(cpuOnly: boolean, asked?: 'native' | 'graph'): 'native' | 'graph' {
  return asked !== 'graph' && cpuOnly && hasNativeOptimizer() ? 'native' : 'graph';
}

/** The native kernel's code for an optimizer; the Caffe convention wins over Nesterov as in applyUpdate. */
function kindCode(c: OptimizerConfig): number {
  if (c.kind === 'adamw') return 3;
  if (c.convention === 'caffe') return 2;
  return c.kind === 'nesterov' ? 1 : 0;
}

export class NativeOptimizer {
  private constructor(
    private readonly a: Addon,
    readonly config: OptimizerConfig,
  ) {}

  /** The native optimizer for `config`, or null where the addon is not built (or disabled). */
  static create(config: OptimizerConfig, threads: number): NativeOptimizer | null {
    const a = load();
    if (!a) return null;
    a.setThreads(Math.max(1, Math.floor(threads)));
    return new NativeOptimizer(a, config);
  }

  /**
   * One step t (1-based) at rate lr on parameter `w` with gradient `g`, updating `w` and `states`
   * (in stateSuffixes order) in place.
   */
  step(w: Float32Array, g: Float32Array, states: readonly Float32Array[], lr: number, t: number, isBias: boolean): void {
    this.a.update(kindCode(this.config), w, g, states[0] ?? null, states[1] ?? null, this.hyper(states, lr, t, isBias));
  }

  /**
   * The same step for a fully connected weight w (rows × cols) whose gradient is dyᵀ·x over a batch
   * of n (dy: n × rows, x: n × cols), summed row by row as it is applied: the gradient never exists
   * whole. The sum runs in batch order in float32, not in ONNX Runtime's order: equal to the graph's
   * gradient to rounding, not bit for bit.
   */
  stepOuter(w: Float32Array, dy: Float32Array, x: Float32Array, states: readonly Float32Array[], lr: number, t: number): void {
    this.a.updateOuter(kindCode(this.config), w, dy, x, states[0] ?? null, states[1] ?? null, this.hyper(states, lr, t, false));
  }

  private hyper(states: readonly Float32Array[], lr: number, t: number, isBias: boolean): Float64Array {
    const c = this.config;
    const n = stateSuffixes(c).length;
    if (states.length !== n) throw new Error(`the ${c.kind} update keeps ${n} state arrays per parameter, not ${states.length}`);
    const [h0, bc1 = 0, bc2 = 0] = hyperValues(c, lr, t);
    const wd = isBias && !c.decayBiases ? 0 : c.weightDecay;
    // The graph's float32 constants are these doubles rounded, as the kernel rounds them.
    return Float64Array.of(h0!, c.momentum, wd, c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.eps, bc1, bc2);
  }

  /** Frees a typed array's memory now rather than at the next garbage collection (it reads as empty after). */
  release(a: Float32Array): void {
    this.a.detach(a);
  }

  /**
   * What a step frees stays in the C heap for the next step, which allocates the same sizes again
   * (glibc: no separate mappings for large blocks, no trimming). Measured on VGG-A batch 8, 2 threads:
   * handing the memory back and faulting it in again at every step halved the speed (8 s of system
   * time per 4 steps); ORT's own arena keeps it too but rounds its regions up to powers of two.
   */
  retainFreedMemory(): void {
    this.a.retainFreedMemory();
  }
}
