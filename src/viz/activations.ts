/** Feature maps of one layer for one image: the top-k channels by mean activation, as a grid. */
import { gridRaster, toPng, type Normalize, type Tile } from '../plot/image.js';
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
}

export async function activations(
  net: Network,
  x: Float32Array,
  o: { layer: string; top: number },
): Promise<{ result: ActivationsResult; maps: Tile[] }> {
  const probe = await Probe.create(net, 1, (ng) => ({ act: findLayer(ng, o.layer, net.name, { spatial: true }).value }));
  const r = (await probe.run([x]))['act']!;
  await probe.release();
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
  return { result: { layer: o.layer, shape: r.shape, silent, top, means: stats.map((s) => s.mean) }, maps };
}

export async function renderMaps(maps: readonly Tile[], normalize: Normalize): Promise<Buffer> {
  const side = Math.max(...maps.map((m) => m.width));
  const g = gridRaster(maps, { normalize, pad: 2, scale: Math.max(1, Math.round(64 / side)) });
  return toPng(g.rgb, g.width, g.height);
}
