/** Projections of units to pixels as a PNG (the projections, their tiles and words: projection.ts). */
import { figure } from '../plot/figure.js';
import type { Network } from './layers.js';
import { projectionsFigure, type ProjectResult } from './projection.js';

export { projectImage, unitName, type ProjectOptions, type ProjectResult } from './projection.js';

/** The input, then each unit's projection (projectionsFigure), as PNG. */
export async function renderProjections(
  net: Network,
  x: Float32Array,
  r: ProjectResult,
  projections: readonly Float32Array[],
  image?: string,
): Promise<Buffer> {
  return (await figure(projectionsFigure(net, x, r, projections, image))).png;
}
