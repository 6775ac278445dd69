/**
 * Filters of a conv layer: the kernels as tiles (the first layer's as RGB, deeper layers' one
 * grayscale tile per input channel) and per-filter numbers — L2 norm, dead filters (norm far below
 * the layer's median), and the share of spectral energy in low, mid and high spatial frequencies,
 * which is where AlexNet's 11×11/4 conv1 and ZFNet's 7×7/2 differ (ZF 2014, Fig. 6).
 */
import type { AnyNode, Value } from '../graph/graph.js';
import { figure, type FigureLayout } from '../plot/figure.js';
import type { Tile } from '../plot/image.js';
import { UsageError } from '../util/errors.js';
import { caption } from './caption.js';
import { findLayer, layers, type Network, type NetworkGraph } from './network.js';

/** Band edges in cycles per pixel (Nyquist is 0.5): low < 1/8 ≤ mid < 1/4 ≤ high. */
const BANDS = { mid: 1 / 8, high: 1 / 4 } as const;

export interface FilterStat {
  index: number;
  norm: number;
  dead: boolean;
  /** Shares of the kernel's spectral energy (DC included in low); they sum to 1 (0 for a zero filter). */
  low: number;
  mid: number;
  high: number;
}

export interface FilterStats {
  count: number;
  medianNorm: number;
  deadThreshold: number;
  deadFraction: number;
  mean: { norm: number; low: number; mid: number; high: number };
  filters: FilterStat[];
}

/** Energy per band of one k×k kernel: |DFT|² summed by radial frequency (separable DFT, O(k³)). */
export function bandEnergy(k: Float32Array | number[], kh: number, kw: number): [number, number, number] {
  // Rows first: R[y][v] = Σ_x k[y][x] e^{−2πi v x / kw}.
  const re = new Float64Array(kh * kw);
  const im = new Float64Array(kh * kw);
  for (let y = 0; y < kh; y++) {
    for (let v = 0; v < kw; v++) {
      let a = 0;
      let b = 0;
      for (let x = 0; x < kw; x++) {
        const t = (-2 * Math.PI * v * x) / kw;
        const val = Number(k[y * kw + x]);
        a += val * Math.cos(t);
        b += val * Math.sin(t);
      }
      re[y * kw + v] = a;
      im[y * kw + v] = b;
    }
  }
  const bands: [number, number, number] = [0, 0, 0];
  for (let u = 0; u < kh; u++) {
    const fu = Math.min(u, kh - u) / kh;
    for (let v = 0; v < kw; v++) {
      let a = 0;
      let b = 0;
      for (let y = 0; y < kh; y++) {
        const t = (-2 * Math.PI * u * y) / kh;
        const c = Math.cos(t);
        const s = Math.sin(t);
        const r = re[y * kw + v]!;
        const i = im[y * kw + v]!;
        a += r * c - i * s;
        b += r * s + i * c;
      }
      const fv = Math.min(v, kw - v) / kw;
      const f = Math.hypot(fu, fv);
      bands[f < BANDS.mid ? 0 : f < BANDS.high ? 1 : 2] += a * a + b * b;
    }
  }
  return bands;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? 0 : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Statistics of every filter of a weight (M, C, kh, kw); a filter is dead below `deadThreshold` × the median norm. */
export function filterStats(w: Float32Array, shape: readonly number[], deadThreshold: number): FilterStats {
  const [m, c, kh, kw] = shape as [number, number, number, number];
  const per = c * kh * kw;
  const filters: FilterStat[] = [];
  for (let f = 0; f < m; f++) {
    let sq = 0;
    const bands = [0, 0, 0];
    for (let ch = 0; ch < c; ch++) {
      const k = w.subarray(f * per + ch * kh * kw, f * per + (ch + 1) * kh * kw);
      for (let i = 0; i < k.length; i++) sq += k[i]! * k[i]!;
      const e = bandEnergy(k, kh, kw);
      for (let b = 0; b < 3; b++) bands[b]! += e[b]!;
    }
    const total = bands[0]! + bands[1]! + bands[2]!;
    const share = (b: number) => (total > 0 ? bands[b]! / total : 0);
    filters.push({ index: f, norm: Math.sqrt(sq), dead: false, low: share(0), mid: share(1), high: share(2) });
  }
  const med = median(filters.map((f) => f.norm));
  for (const f of filters) f.dead = f.norm < deadThreshold * med;
  const avg = (g: (f: FilterStat) => number) => filters.reduce((a, f) => a + g(f), 0) / Math.max(1, m);
  return {
    count: m,
    medianNorm: med,
    deadThreshold,
    deadFraction: filters.filter((f) => f.dead).length / Math.max(1, m),
    mean: { norm: avg((f) => f.norm), low: avg((f) => f.low), mid: avg((f) => f.mid), high: avg((f) => f.high) },
    filters,
  };
}

export interface ConvWeight {
  layer: string;
  weight: Value;
  /** Whether the conv reads the network's input (its kernels are images). */
  first: boolean;
}

/** The conv of a layer (default: the first conv of the network). */
export function convOf(net: Network, ng: NetworkGraph, name?: string): ConvWeight {
  const all = layers(ng);
  const isConv = (n: AnyNode) => n.op === 'Conv' && n.inputs[1]?.kind === 'param';
  let layer = name === undefined ? all.find((l) => !l.name.includes('/') && l.nodes.some(isConv)) : findLayer(ng, name, net.name);
  if (!layer) throw new UsageError(`Expected a conv layer in ${net.name} but found none`);
  const convs = layer.nodes.filter(isConv);
  if (convs.length !== 1) {
    const withConv = all.filter((l) => l.nodes.filter(isConv).length === 1).map((l) => l.name);
    const why = convs.length ? `${layer.name} has ${convs.length} convolutions` : `${layer.name} has no convolution`;
    throw new UsageError(`Expected a layer with one convolution for --layer (${withConv.join(', ')}) but received "${layer.name}": ${why}`);
  }
  const conv = convs[0]!;
  return { layer: layer.name, weight: conv.inputs[1]!, first: conv.inputs[0] === ng.input };
}

/**
 * Tiles of the first `maxFilters` filters: one RGB tile each for a first layer on RGB input,
 * otherwise a row per filter of its first `maxInputs` input channels in gray.
 */
export function filterTiles(
  w: Float32Array,
  shape: readonly number[],
  o: { rgb: boolean; maxFilters: number; maxInputs: number },
): { tiles: Tile[]; cols: number } {
  const [m, c, kh, kw] = shape as [number, number, number, number];
  const per = c * kh * kw;
  const nf = Math.min(m, o.maxFilters);
  const tiles: Tile[] = [];
  if (o.rgb && c === 3) {
    for (let f = 0; f < nf; f++) tiles.push({ data: w.slice(f * per, (f + 1) * per), channels: 3, height: kh, width: kw });
    return { tiles, cols: Math.min(nf, Math.ceil(Math.sqrt(nf * 1.5))) };
  }
  const ni = Math.min(c, o.maxInputs);
  for (let f = 0; f < nf; f++) {
    for (let ch = 0; ch < ni; ch++) {
      const s = f * per + ch * kh * kw;
      tiles.push({ data: w.slice(s, s + kh * kw), channels: 1, height: kh, width: kw });
    }
  }
  return { tiles, cols: ni };
}

/**
 * The filters as a picture: RGB tiles numbered by filter (dead ones marked), or for a deeper layer a
 * row per filter of gray tiles, one per input channel, labelled filter·input.
 */
export async function renderFilters(
  net: Network,
  cw: ConvWeight,
  w: Float32Array,
  stats: FilterStats,
  o: { maxFilters: number; maxInputs: number },
): Promise<{ png: Buffer; layout: FigureLayout; rgb: boolean }> {
  const shape = cw.weight.shape;
  const [m, c] = shape as [number, number];
  const rgb = cw.first && c === 3;
  const { tiles, cols } = filterTiles(w, shape, {
    rgb,
    maxFilters: rgb ? o.maxFilters : Math.min(o.maxFilters, 32),
    maxInputs: o.maxInputs,
  });
  const dead = (f: number): string => (stats.filters[f]?.dead ? ' dead' : '');
  const labels = rgb
    ? tiles.map((_, f) => `${f}${dead(f)}`)
    : tiles.map((_, i) => `${Math.floor(i / cols)}·${i % cols}${dead(Math.floor(i / cols))}`);
  const nf = rgb ? tiles.length : tiles.length / cols;
  const subtitle = rgb
    ? `filters 0–${nf - 1} of ${m} as RGB, each tile stretched to its own range`
    : `rows: filters 0–${nf - 1} of ${m}; columns: input channels 0–${cols - 1} of ${c} (labels filter·input); each tile stretched to its own range`;
  const { png, layout } = await figure({
    title: `${caption(net, { layer: cw.layer, mode: 'filters' })} · ${shape.join('×')}`,
    subtitle,
    tiles,
    labels,
    cols,
    normalize: 'per-tile',
    bars: [{ label: 'weight, each tile', min: 'tile min', max: 'tile max', colors: 'gray' }],
  });
  return { png, layout, rgb };
}
