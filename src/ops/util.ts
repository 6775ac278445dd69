/** Small checks and shape helpers shared by the op families. */
import { formatShape } from '../graph/dtype.js';
import type { Value } from '../graph/graph.js';

/** The i-th input, which must be present. */
export function req(inputs: readonly (Value | undefined)[], i: number, what: string): Value {
  const v = inputs[i];
  if (!v) throw new Error(`missing input ${i} (${what})`);
  return v;
}

export function expectRank(v: Value, rank: number, what: string): void {
  if (v.rank !== rank) throw new Error(`expected ${what} of rank ${rank} but received ${formatShape(v.shape)}`);
}

export function sameDtype(a: Value, b: Value, what: string): void {
  if (a.dtype !== b.dtype) throw new Error(`${what}: dtypes differ (${a.dtype} vs ${b.dtype})`);
}

/** Numpy-style broadcast of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Normalises a possibly negative axis against a rank. */
export function axisOf(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export function pairOf(v: number | readonly [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** The attributes of an op that has none. */
export type NoAttrs = Record<never, never>;
