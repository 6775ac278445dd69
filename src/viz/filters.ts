/** The filters of a conv layer as a PNG (the tiles, numbers and words: kernels.ts). */
import { figure, type FigureLayout } from '../plot/figure.js';
import { filtersFigure, type ConvWeight, type FilterStats } from './kernels.js';
import type { Network } from './layers.js';

export {
  bandEnergy,
  convOf,
  FILTER_DEFAULTS,
  filterStats,
  filterTiles,
  type ConvWeight,
  type FilterStat,
  type FilterStats,
} from './kernels.js';

/** The filters as a picture (filtersFigure) rendered as PNG. */
export async function renderFilters(
  net: Network,
  cw: ConvWeight,
  w: Float32Array,
  stats: FilterStats,
  o: { maxFilters: number; maxInputs: number },
): Promise<{ png: Buffer; layout: FigureLayout; rgb: boolean }> {
  const { spec, rgb } = filtersFigure(net, cw, w, stats, o);
  const { png, layout } = await figure(spec);
  return { png, layout, rgb };
}
