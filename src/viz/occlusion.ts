/** Occlusion sensitivity as a PNG (the sweep, the maps and their words: occlusion-map.ts). */
import { figure } from '../plot/figure.js';
import type { Network } from './layers.js';
import { occlusionFigure, type OcclusionResult } from './occlusion-map.js';

export { defaultOcclusion, occluderStarts, occlusion, type OcclusionOptions, type OcclusionResult } from './occlusion-map.js';

/** The image and the two maps with their colour bars (occlusionFigure), as PNG. */
export async function renderOcclusion(net: Network, x: Float32Array, r: OcclusionResult, image?: string): Promise<Buffer> {
  return (await figure(occlusionFigure(net, x, r, image))).png;
}
