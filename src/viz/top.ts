/**
 * Top activations (ZF 2014, Fig. 2): for each channel, the k images of a dataset whose strongest
 * activation of that channel is largest, with the deconvnet projection of that activation beside the
 * image patch it sees. The pass over the dataset keeps only per-channel maxima (the probe reduces in
 * ORT) and a running top-k, so memory does not grow with the dataset or the layer.
 */
import { subset, type Dataset } from '../data/index.js';
import { reduceMax } from '../ops/shape.js';
import { figure } from '../plot/figure.js';
import type { Tile } from '../plot/image.js';
import { expected } from '../util/errors.js';
import { NEVER, Stopped, type StopSignal } from '../util/stop.js';
import { Projector, strongest, type Mode } from './backward.js';
import { caption, className } from './caption.js';
import { cropTile, loadDataset, projectionTile, rasterTile, stretch, supportBox, toRgb, type Box } from './images.js';
import { findLayer, type Network } from './network.js';
import { Probe } from './probe.js';

export interface TopOptions {
  layer: string;
  channels: readonly number[];
  k: number;
  mode: Mode;
  batch: number;
  /** Called after each batch of the search with the images searched so far. */
  onProgress?: (seen: number, total: number) => void;
}

interface TopHit {
  image: string;
  label: number;
  activation: number;
  /** [y, x] of the strongest position in the feature map. */
  position: number[];
  /** The patch shown: where the projection is non-zero. */
  box: Box | null;
}

export interface TopResult {
  layer: string;
  shape: number[];
  images: number;
  channels: { channel: number; hits: TopHit[] }[];
}

/** `stop` ends the search between batches (Stopped): a partial search is not the dataset's top images. */
export async function topActivations(
  net: Network,
  ds: Dataset,
  o: TopOptions,
  stop: StopSignal = NEVER,
): Promise<{ result: TopResult; png: Buffer }> {
  let shape: number[] = [];
  const probe = await Probe.create(net, o.batch, (ng) => {
    const v = findLayer(ng, o.layer, net.name, { spatial: true }).value;
    shape = v.shape.slice(1);
    return { max: reduceMax(v, [2, 3]) };
  });
  const c = shape[0] ?? 0;
  for (const ch of o.channels)
    if (!Number.isInteger(ch) || ch < 0 || ch >= c) throw expected(`channels in [0, ${c - 1}] of ${o.layer}`, '--channel', ch);
  const best = o.channels.map(() => [] as { index: number; value: number }[]);
  let seen = 0;
  try {
    await loadDataset(ds, net, async (b) => {
      if (stop.requested) {
        throw new Stopped(`visualize top stopped by ${stop.reason} after ${seen} of ${ds.length} images; nothing written`);
      }
      const r = (await probe.run(b.x))['max']!.data;
      b.x.forEach((_, i) => {
        o.channels.forEach((ch, j) => {
          const list = best[j]!;
          list.push({ index: seen + i, value: r[i * c + ch]! });
          list.sort((a, z) => z.value - a.value);
          if (list.length > o.k) list.pop();
        });
      });
      seen += b.x.length;
      o.onProgress?.(seen, ds.length);
    });
  } finally {
    await probe.release();
  }

  // Second pass over the few winners only: their positions, then their projections.
  const wanted = [...new Set(best.flat().map((h) => h.index))].sort((a, b) => a - b);
  const got = await loadDataset(subset(ds, wanted), net);
  const img = new Map(wanted.map((idx, i) => [idx, { x: got.x[i]!, name: got.names[i]!, label: got.labels[i]! }]));
  const actProbe = await Probe.create(net, Math.min(o.batch, wanted.length), (ng) => ({ act: findLayer(ng, o.layer, net.name).value }));
  const acts = (await actProbe.run(wanted.map((i) => img.get(i)!.x)))['act']!;
  await actProbe.release();
  const per = acts.shape.reduce((a, b) => a * b, 1);
  const row = new Map(wanted.map((idx, i) => [idx, strongest(acts.data.subarray(i * per, (i + 1) * per), acts.shape)]));

  const jobs = best.flatMap((list, j) => list.map((h) => ({ j, h, u: row.get(h.index)![o.channels[j]!]! })));
  const projector = await Projector.create(net, o.layer, o.mode, Math.max(1, Math.min(o.batch, jobs.length)));
  const proj = await projector.project(
    jobs.map((q) => img.get(q.h.index)!.x),
    jobs.map((q) => ({ channel: q.u.channel, position: q.u.position })),
  );
  await projector.release();

  const s = net.inputSize;
  const w = shape[2] ?? 1;
  const result: TopResult = { layer: o.layer, shape, images: seen, channels: o.channels.map((channel) => ({ channel, hits: [] })) };
  const rows: Tile[][] = o.channels.map(() => []);
  const patches: Tile[][] = o.channels.map(() => []);
  jobs.forEach((q, i) => {
    const p = proj[i]!;
    const it = img.get(q.h.index)!;
    const box = supportBox(p, net.channels, s);
    const full: Box = { top: 0, left: 0, height: s, width: s };
    result.channels[q.j]!.hits.push({
      image: it.name,
      label: it.label,
      activation: q.h.value,
      position: [Math.floor(q.u.position / w), q.u.position % w],
      box: box ?? null,
    });
    rows[q.j]!.push(stretch(cropTile(projectionTile(p, net.channels, s, false), box ?? full)));
    patches[q.j]!.push(cropTile(rasterTile({ rgb: toRgb(it.x, net.channels, s), width: s, height: s }), box ?? full));
  });
  const blank: Tile = { data: new Float32Array(1).fill(1), channels: 1, height: 1, width: 1 };
  const tiles: Tile[] = [];
  const labels: string[] = [];
  o.channels.forEach((ch, j) => {
    const hits = result.channels[j]!.hits;
    const fill = (t: Tile[]) => [...t, ...Array.from({ length: o.k - t.length }, () => blank)];
    const names = (f: (h: TopHit) => string) => Array.from({ length: o.k }, (_, i) => (hits[i] ? f(hits[i]) : ''));
    tiles.push(...fill(rows[j]!), ...fill(patches[j]!));
    labels.push(...names((h) => `ch ${ch}: ${h.activation.toPrecision(3)}`), ...names((h) => className(net, h.label)));
  });
  const { png } = await figure({
    title: `${caption(net, { layer: o.layer, mode: `top ${o.k}` })} · ${seen} images searched`,
    subtitle: `a row per channel: its ${o.k} strongest images' ${o.mode} projections (labelled with the activation), then the patches they see (labelled with the class)`,
    tiles,
    labels,
    cols: 2 * o.k,
    normalize: 'none',
    fit: true,
    bars: [{ label: 'projection, each tile', min: 'tile min', max: 'tile max', colors: 'gray' }],
  });
  return { result, png };
}
