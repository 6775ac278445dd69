/**
 * A small seeded PRNG (mulberry32) whose whole state is one uint32, so it can be stored in a
 * checkpoint and restored exactly. Period 2^32: ample for initialisation, shuffles and masks.
 */
const STEP = 0x6d2b79f5;

/** mulberry32's output for a state. */
function mix(s: number): number {
  let t = Math.imul(s ^ (s >>> 15), s | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** The state to save; `Rng.fromState(rng.state)` continues the same stream. */
  get state(): number {
    return this.s;
  }

  static fromState(state: number): Rng {
    return new Rng(state);
  }

  /** An independent stream derived from this seed and a label (e.g. a worker index or a layer name). */
  fork(label: number | string): Rng {
    let h = this.s ^ 0x9e3779b9;
    const text = String(label);
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    return new Rng(h ^ (h >>> 15));
  }

  nextUint32(): number {
    this.s = (this.s + STEP) >>> 0;
    return mix(this.s);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * Fills out with a dropout mask: keep where next() >= rate, else 0 — the same draws, in order, as
   * calling next() per element (u / 2³² >= rate is exactly u >= rate·2³²), with the state in a local.
   */
  fillMask(out: Float32Array, rate: number, keep: number): Float32Array {
    let s = this.s;
    const threshold = rate * 4294967296;
    for (let i = 0; i < out.length; i++) {
      s = (s + STEP) >>> 0;
      out[i] = mix(s) >= threshold ? keep : 0;
    }
    this.s = s;
    return out;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Normal deviate (Box–Muller; the second deviate is discarded so the state stays one number). */
  normal(mean = 0, std = 1): number {
    const u = 1 - this.next();
    const v = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }
}
