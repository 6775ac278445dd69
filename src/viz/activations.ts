/** Feature maps of one layer for one image: the top-k channels by mean activation, as a grid. */
import { softmax } from '../ops/softmax.js';
import { figure, type ColorBar } from '../plot/figure.js';
import { finiteRange, type Normalize, type Tile } from '../plot/image.js';
import { caption } from './caption.js';
import { findLayer, type Network } from './network.js';
import { Probe } from './probe.js';

interface ActivationsResult {
  layer: string;
  /** C, H, W. */
  shape: number[];
  /** Channels that are zero everywhere on this image (dead for it). */
  silent: number;
  /** The top channels, strongest mean first. */
  top: { channel: number; mean: number; max: number }[];
  /** Mean activation of every channel, in channel order. */
  means: number[];
  predicted: { index: number; probability: number };
}

export async function activations(
  net: Network,
  x: Float32Array,
  o: { layer: string; top: number },
): Promise<{ result: ActivationsResult; maps: Tile[] }> {
  const probe = await Probe.create(net, 1, (ng) => ({
    act: findLayer(ng, o.layer, net.name, { spatial: true }).value,
    probs: softmax(ng.logits),
  }));
  const out = await probe.run([x]);
  await probe.release();
  const r = out['act']!;
  const probs = out['probs']!.data;
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
  const [c, h, w] = r.shape as [number, number, number];
  const plane = h * w;
  const stats = [];
  let silent = 0;
  for (let ch = 0; ch < c; ch++) {
    const m = r.data.subarray(ch * plane, (ch + 1) * plane);
    let sum = 0;
    let max = -Infinity;
    let nz = false;
    for (const v of m) {
      sum += v;
      if (v > max) max = v;
      if (v !== 0) nz = true;
    }
    if (!nz) silent++;
    stats.push({ channel: ch, mean: sum / plane, max });
  }
  const top = [...stats].sort((a, b) => b.mean - a.mean).slice(0, o.top);
  const maps: Tile[] = top.map((t) => ({
    data: r.data.slice(t.channel * plane, (t.channel + 1) * plane),
    channels: 1,
    height: h,
    width: w,
  }));
  const predicted = { index: best, probability: probs[best]! };
  return { result: { layer: o.layer, shape: r.shape, silent, top, means: stats.map((s) => s.mean), predicted }, maps };
}

/** The maps, strongest first, each labelled with its channel; the gray scale's numbers when it is shared. */
export async function renderMaps(
  net: Network,
  r: ActivationsResult,
  maps: readonly Tile[],
  normalize: Normalize,
  image?: string,
): Promise<Buffer> {
  let bar: ColorBar = { label: 'activation, each tile', min: 'tile min', max: 'tile max', colors: 'gray' };
  if (normalize === 'global') {
    const range = { min: Infinity, max: -Infinity };
    for (const m of maps) {
      const t = finiteRange(m.data);
      range.min = Math.min(range.min, t.min);
      range.max = Math.max(range.max, t.max);
    }
    bar = { label: 'activation', min: range.min, max: range.max, colors: 'gray' };
  }
  const [c, h, w] = r.shape;
  const { png } = await figure({
    title: caption(net, { layer: r.layer, mode: 'activations', image, class: { ...r.predicted, what: 'predicted' } }),
    subtitle: `the ${maps.length} of ${c} channels (${h}×${w}) with the highest mean activation, strongest first`,
    tiles: maps,
    labels: r.top.map((t) => `ch ${t.channel}`),
    normalize,
    minTile: 64,
    bars: [bar],
  });
  return png;
}
