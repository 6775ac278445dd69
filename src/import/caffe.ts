/**
 * Weights of a Caffe `.caffemodel` (BVLC model zoo): a NetParameter with `layer` or legacy `layers`,
 * blobs with `shape` or num/channels/height/width, as floats or doubles. The network is wired by
 * blob names, in-place layers (ReLU, Dropout) included; its output is the last weight layer in the
 * file, so loss and accuracy layers and auxiliary heads that do not feed it are left out.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../util/errors.js';
import { decodeCaffeNet, V1_TYPES, type CaffeBlob, type CaffeLayer } from './caffe-schema.js';
import { floatsFromBytes, numel, postOrder, transpose2d, type Source, type SourceLayer, type SourceLrn } from './source.js';

interface Blob {
  shape: number[];
  data: Float32Array;
}

function blobOf(b: CaffeBlob, what: string): Blob {
  const dims = b.shape?.dim ?? [];
  const legacy = [b.num ?? 0, b.channels ?? 0, b.height ?? 0, b.width ?? 0];
  const shape = dims.length ? dims : legacy.every((d) => d > 0) ? legacy : [];
  const data =
    b.data && b.data.byteLength
      ? floatsFromBytes(b.data, false)
      : b.doubleData && b.doubleData.byteLength
        ? floatsFromBytes(b.doubleData, true)
        : new Float32Array(0);
  if (!shape.length || numel(shape) !== data.length)
    throw new UsageError(`Expected ${numel(shape)} values for ${what} (shape ${JSON.stringify(shape)}) but received ${data.length}`);
  return { shape, data };
}

/** A blob's shape as the file states it, for messages. */
function blobShape(b: CaffeBlob): string {
  const dims = b.shape?.dim ?? [b.num ?? 0, b.channels ?? 0, b.height ?? 0, b.width ?? 0];
  return `[${dims.join(', ')}]`;
}

const typeOf = (l: CaffeLayer): string => (typeof l.type === 'number' ? (V1_TYPES[l.type] ?? `type ${l.type}`) : (l.type ?? ''));

export function readCaffe(file: string): Source {
  let net;
  try {
    net = decodeCaffeNet(readFileSync(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== undefined) throw e;
    throw new UsageError(`Expected a Caffe model (NetParameter) in ${file} but it does not parse: ${(e as Error).message}`);
  }
  const all = net.layer?.length ? net.layer : (net.layers ?? []);
  if (!all.length) throw new UsageError(`Expected Caffe layers in ${file} but it has none`);
  // Two weight layers of one name contradict each other (Caffe shares weights by layer name); layers
  // without weights may repeat a name, as the TRAIN and TEST data layers of a train_val net do.
  const weightLayer = new Map<string, { at: number; shape: string }>();
  all.forEach((l, i) => {
    if (!l.blobs?.length || l.name === undefined) return;
    const shape = `${typeOf(l)} of ${blobShape(l.blobs[0]!)}`;
    const before = weightLayer.get(l.name);
    if (before) {
      const both = `layers ${before.at} (${before.shape}) and ${i} (${shape}) both are`;
      throw new UsageError(`Expected one layer named ${JSON.stringify(l.name)} in ${file} but ${both}`);
    }
    weightLayer.set(l.name, { at: i, shape });
  });

  // Wire by blob name: each bottom reads the latest layer that wrote that blob.
  const writer = new Map<string, number>();
  const inputs: number[][] = all.map((l, i) => {
    const ins = (l.bottom ?? []).map((b) => writer.get(b)).filter((w): w is number => w !== undefined);
    for (const t of l.top ?? []) writer.set(t, i);
    return ins;
  });
  const isWeight = (i: number) => ['Convolution', 'InnerProduct'].includes(typeOf(all[i]!)) && (all[i]!.blobs?.length ?? 0) > 0;
  let root = -1;
  for (let i = all.length - 1; i >= 0 && root < 0; i--) if (isWeight(i)) root = i;
  if (root < 0) throw new UsageError(`Expected convolution or inner-product layers with weights in ${file} but found none`);
  const order = postOrder([root], (i) => inputs[i]!);

  const layers: SourceLayer[] = [];
  const lrn: SourceLrn[] = [];
  let pool: Source['pool'];
  let firstPoolAt = -1;
  let firstLrnAt = -1;
  for (const [at, i] of order.entries()) {
    const l = all[i]!;
    const name = l.name ?? `layer ${i}`;
    const type = typeOf(l);
    const blobs = l.blobs ?? [];
    if ((type === 'Convolution' || type === 'InnerProduct') && !blobs.length) {
      throw new UsageError(
        `Expected trained weights in ${type} layer ${name} of ${file} but it has none (a network definition without weights?)`,
      );
    }
    if (type === 'Convolution') {
      const p = l.convolutionParam ?? {};
      const w = blobOf(blobs[0]!, `${name} weights in ${file}`);
      const b = blobs[1] ? blobOf(blobs[1], `${name} bias in ${file}`) : undefined;
      if (p.dilation?.some((d) => d !== 1))
        throw new UsageError(`Expected dilation 1 in ${name} of ${file} but received ${JSON.stringify(p.dilation)}`);
      const [ph, pw] = [p.padH ?? p.pad?.[0] ?? 0, p.padW ?? p.pad?.[1] ?? p.pad?.[0] ?? 0];
      const [sh, sw] = [p.strideH ?? p.stride?.[0] ?? 1, p.strideW ?? p.stride?.[1] ?? p.stride?.[0] ?? 1];
      layers.push({ name, weight: w.data, shape: w.shape, bias: b?.data, group: p.group ?? 1, strides: [sh, sw], pads: [ph, pw, ph, pw] });
    } else if (type === 'InnerProduct') {
      const w = blobOf(blobs[0]!, `${name} weights in ${file}`);
      const b = blobs[1] ? blobOf(blobs[1], `${name} bias in ${file}`) : undefined;
      // Legacy blobs are (1, 1, out, in); newer ones (out, in); with `transpose` (in, out).
      const [r, c] = w.shape.length === 4 ? [w.shape[2]!, w.shape[3]!] : [w.shape[0]!, numel(w.shape.slice(1))];
      const t = l.innerProductParam?.transpose === true;
      layers.push({ name, weight: t ? transpose2d(w.data, r, c) : w.data, shape: t ? [c, r] : [r, c], bias: b?.data });
    } else if (type === 'LRN') {
      if (firstLrnAt < 0) firstLrnAt = at;
      const p = l.lrnParam ?? {};
      if ((p.normRegion ?? 0) !== 0) throw new UsageError(`Expected LRN across channels in ${name} of ${file} but received WITHIN_CHANNEL`);
      // Caffe's α is divided by local_size like ONNX's alpha; its k is ONNX's bias.
      lrn.push({ name, attrs: { size: p.localSize ?? 5, alpha: p.alpha ?? 1, beta: p.beta ?? 0.75, bias: p.k ?? 1 } });
    } else if (type === 'Pooling' && (l.poolingParam?.pool ?? 0) === 0) {
      if (firstPoolAt < 0) firstPoolAt = at;
      // Caffe rounds pooled sizes up unless round_mode is FLOOR (1), a later addition.
      pool = (l.poolingParam?.roundMode ?? 0) === 1 && pool !== 'ceil' ? 'floor' : 'ceil';
    }
  }
  const used = new Set(order);
  const unused = all.flatMap((l, i) => (isWeight(i) && !used.has(i) ? [l.name ?? `layer ${i}`] : []));
  const inputLayer = all.find((l) => typeOf(l) === 'Input')?.inputParam?.shape?.[0]?.dim;
  const dims = net.inputShape?.[0]?.dim ?? (net.inputDim?.length ? net.inputDim.slice(0, 4) : inputLayer);
  // Caffe's data layers feed BGR pixels in 0–255 less the mean: every BVLC model was trained so.
  return {
    format: 'caffemodel',
    input: 'caffe',
    layers,
    lrn,
    normAfterPool: firstLrnAt >= 0 && firstPoolAt >= 0 && firstPoolAt < firstLrnAt,
    pool,
    inputShape: dims?.length === 4 ? dims : undefined,
    unused,
  };
}
