/** Parameter initialisation, materialised on demand from each parameter's Init and a seed. */
import { sizeOf } from './dtype.js';
import type { Param } from './graph.js';
import { Rng } from '../util/rng.js';

/** fan-in of a weight laid out (out, in, k…) as Conv and Gemm store them. */
function fanIn(shape: readonly number[]): number {
  return shape.length > 1 ? sizeOf(shape.slice(1)) : 1;
}

/** Values for one parameter; each parameter draws from its own stream (seed forked by name). */
function initParam(p: Param, seed: number): Float32Array {
  const shape = p.value.shape;
  const out = new Float32Array(sizeOf(shape));
  const rng = new Rng(seed).fork(p.name);
  const init = p.init;
  switch (init.kind) {
    case 'constant':
      out.fill(init.value);
      break;
    case 'normal':
      for (let i = 0; i < out.length; i++) out[i] = rng.normal(init.mean ?? 0, init.std);
      break;
    case 'uniform':
      for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-init.limit, init.limit);
      break;
    case 'xavier': {
      const limit = Math.sqrt(3 / fanIn(shape));
      for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-limit, limit);
      break;
    }
    case 'kaiming': {
      const std = Math.sqrt(2 / fanIn(shape));
      for (let i = 0; i < out.length; i++) out[i] = rng.normal(0, std);
      break;
    }
  }
  return out;
}

/** All parameters of a graph, by name. */
export function initParams(params: readonly Param[], seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const p of params) out.set(p.name, initParam(p, seed));
  return out;
}
