/**
 * `deconvnet`, `saliency` and `guided`: one image, one layer, a few units projected back to the
 * input with the mode's ReLU rule (see backward.ts). Units are each channel's strongest position;
 * for the logits, the class asked for or the predicted one.
 */
import { softmax } from '../ops/softmax.js';
import { figure } from '../plot/figure.js';
import type { Raster } from '../plot/image.js';
import { expected } from '../util/errors.js';
import { Projector, strongest, type Mode } from './backward.js';
import { caption, className } from './caption.js';
import { projectionTile, rasterTile, stretch, supportBox, toRgb, type Box } from './images.js';
import { findLayer, lastSpatialLayer, logitsLayer, type Network } from './network.js';
import { Probe } from './probe.js';

export interface ProjectOptions {
  mode: Mode;
  /** A layer name, or 'logits' (default: logits for gradient/guided, the last layer with feature maps for deconvnet). */
  layer?: string;
  /** Channels (classes for logits) to project; default: the `count` strongest (the predicted class for logits). */
  channels?: readonly number[];
  count: number;
  /** Units per backward run. */
  batch: number;
}

interface ProjectedUnit {
  channel: number;
  /** [y, x] in the layer's feature map ([] for fully connected layers). */
  position: number[];
  activation: number;
  /** Largest |value| of the projection, and where it is non-zero (the unit's receptive field, clipped). */
  maxAbs: number;
  box: Box | null;
}

export interface ProjectResult {
  mode: Mode;
  layer: string;
  /** Layer output shape without the batch. */
  shape: number[];
  predicted: { index: number; class: string; probability: number };
  units: ProjectedUnit[];
}

export async function projectImage(
  net: Network,
  x: Float32Array,
  o: ProjectOptions,
): Promise<{ result: ProjectResult; projections: Float32Array[] }> {
  const layerName = o.layer ?? (o.mode === 'deconvnet' ? lastSpatialLayer(net.build(1)).name : 'logits');
  const probe = await Probe.create(net, 1, (ng) => ({
    act: layerName === 'logits' ? logitsLayer(ng).value : findLayer(ng, layerName, net.name).value,
    probs: softmax(ng.logits),
  }));
  const r = await probe.run([x]);
  await probe.release();
  const act = r['act']!;
  const probs = r['probs']!.data;
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
  const per = strongest(act.data, act.shape);
  const c = act.shape[0] ?? 1;
  for (const ch of o.channels ?? []) {
    if (!Number.isInteger(ch) || ch < 0 || ch >= c) throw expected(`channels in [0, ${c - 1}] of ${layerName}`, '--channel', ch);
  }
  const chosen = o.channels
    ? o.channels.map((ch) => per[ch]!)
    : layerName === 'logits'
      ? [per[best]!]
      : [...per].sort((a, b) => b.value - a.value).slice(0, o.count);
  const projector = await Projector.create(net, layerName, o.mode, Math.min(o.batch, chosen.length));
  const projections = await projector.project(
    chosen.map(() => x),
    chosen.map((u) => ({ channel: u.channel, position: u.position })),
  );
  await projector.release();
  const w = act.shape.length >= 3 ? act.shape[act.shape.length - 1]! : 1;
  const units = chosen.map((u, i) => {
    const p = projections[i]!;
    let maxAbs = 0;
    for (const v of p) maxAbs = Math.max(maxAbs, Math.abs(v));
    return {
      channel: u.channel,
      position: act.shape.length >= 3 ? [Math.floor(u.position / w), u.position % w] : [],
      activation: u.value,
      maxAbs,
      box: supportBox(p, net.channels, net.inputSize) ?? null,
    };
  });
  return {
    result: {
      mode: o.mode,
      layer: layerName,
      shape: act.shape,
      predicted: { index: best, class: className(net, best), probability: probs[best]! },
      units,
    },
    projections,
  };
}

/** The command that draws each mode: saliency is the gradient's picture. */
const MODE_NAMES: Record<Mode, string> = { gradient: 'saliency', deconvnet: 'deconvnet', guided: 'guided' };

/** A unit as a person names it: a class of the logits, or a channel at its strongest position. */
export function unitName(net: Network, r: ProjectResult, u: ProjectedUnit): string {
  if (r.layer === 'logits') return className(net, u.channel);
  return u.position.length ? `ch ${u.channel} (${u.position.join(',')})` : `unit ${u.channel}`;
}

/** The input, then each unit's projection (RGB for deconvnet/guided, max |gradient| over colour for saliency). */
export async function renderProjections(
  net: Network,
  x: Float32Array,
  r: ProjectResult,
  projections: readonly Float32Array[],
  image?: string,
): Promise<Buffer> {
  const s = net.inputSize;
  const input: Raster = { rgb: toRgb(x, net.channels, s), width: s, height: s };
  const magnitude = r.mode === 'gradient';
  const tiles = [rasterTile(input), ...projections.map((p) => stretch(projectionTile(p, net.channels, s, magnitude)))];
  const what = magnitude ? 'max |gradient| over colour' : `${r.mode} projection`;
  const { png } = await figure({
    title: caption(net, { layer: r.layer, mode: MODE_NAMES[r.mode], image, class: { ...r.predicted, what: 'predicted' } }),
    subtitle: `the input, then ${r.layer === 'logits' ? 'the class score' : "each channel's strongest unit"} projected to pixels: ${what}, each tile stretched to its own range`,
    tiles,
    labels: ['input', ...r.units.map((u) => unitName(net, r, u))],
    cols: Math.min(tiles.length, 8),
    normalize: 'none',
    minTile: 96,
    bars: [{ label: `${magnitude ? '|gradient|' : 'projection'}, each tile`, min: 'tile min', max: 'tile max', colors: 'gray' }],
  });
  return png;
}
