/**
 * One dataset item → its views in a batch. Files: read, plan from a JS header probe (no sharp
 * metadata round trip); a JPEG with one view goes through the native path when it is built
 * (native-jpeg.ts: partial, DCT-reduced decode, resize and normalise in one job); everything else
 * gets one sharp pipeline per distinct resize (resize then extract, so libvips computes only the
 * window and can shrink JPEGs on load), then one JS pass into the batch layout. In-memory rows
 * skip sharp: the JS resampler is faster for tiny images.
 */
import { readFileSync, statSync } from 'node:fs';
import sharp from 'sharp';
import type { Rng } from '../util/rng.js';
import type { Dataset } from './dataset.js';
import { FileDataset, maxItemBytes, PixelDataset } from './dataset.js';
import { formatBytes } from '../util/budget.js';
import { UsageError } from '../util/errors.js';
import {
  applyColourJitter,
  copyWindow,
  type Image8,
  renderView,
  type SourceFrame,
  toGray,
  type View,
  writeInterleavedU8,
  writePlanarF32,
} from './pixels.js';
import { endsWithEoi, renderJpegView } from './native-jpeg.js';
import { probeImage } from './probe.js';
import type { Plan, Transforms } from './transforms.js';

export type Layout = 'nchw-f32' | 'nhwc-u8';

/** Where a sample's views go: rows slot*views … slot*views+views-1 of the batch. */
export interface BatchTarget {
  layout: Layout;
  x: Float32Array | Uint8Array;
  /** Per view and channel: the lighting offset in [0, 1] pixel units (what nhwc-u8 models must add). */
  offset: Float32Array;
  channels: 1 | 3;
  height: number;
  width: number;
  views: number;
}

export interface DecodeOptions {
  /** Images with more pixels than this are skipped before decoding (pixel bombs); sharp enforces it too. */
  limitInputPixels: number;
  /** sharp's resampling kernel; 'linear' matches torchvision's bilinear resize. */
  kernel: 'nearest' | 'linear' | 'cubic' | 'lanczos3';
  /** Whether JPEGs may take the native path (native/jpeg_view.c) when it is built; default true. */
  native?: boolean;
}

export const DEFAULT_DECODE: DecodeOptions = { limitInputPixels: 0x3fff * 0x3fff, kernel: 'linear' };

/**
 * The default pixel limit for a transform: an image whose side is up to 16× the largest side the
 * transform resizes or crops to (beyond the 8× that JPEG shrink-on-load absorbs), and at least
 * 8192×8192 (the largest photos), is decoded; anything larger is skipped before decoding. A
 * progressive JPEG holds all its coefficients in memory whatever the output size (about 3 bytes
 * a pixel), so a 52 kB file claiming 16000×16000 would cost close to a gigabyte.
 */
export function pixelLimitFor(tf: { largestSide: number }): number {
  return Math.max(8192 * 8192, (16 * tf.largestSide) ** 2);
}

/** Renders item `i`; returns null, or why the item was skipped (unreadable, corrupt, too large). */
export async function renderSample(
  ds: Dataset,
  i: number,
  tf: Transforms,
  rng: Rng,
  t: BatchTarget,
  slot: number,
  o: DecodeOptions,
): Promise<string | null> {
  if (ds instanceof PixelDataset) {
    const d = ds.descriptor;
    let src: Image8 = { data: ds.pixels(i), width: d.width, height: d.height, channels: d.channels };
    if (src.channels === 3 && t.channels === 1) src = toGray(src);
    const plan = tf.plan(rng, d.width, d.height);
    plan.views.forEach((v, k) => emit(src, { kx: d.width / v.sw, ky: d.height / v.sh, offX: 0, offY: 0 }, v, plan, t, slot * t.views + k));
    return null;
  }
  let buf: Buffer;
  try {
    // Synchronous on purpose: an async read is four trips through the libuv pool that sharp's
    // decodes also wait in; reading ~100 kB here costs tens of microseconds.
    // No image within the pixel limit takes more than 8 bytes a pixel (16-bit RGBA, uncompressed).
    const size = ds instanceof FileDataset ? ds.size(i) : statSync(ds.name(i)).size;
    const most = o.limitInputPixels * 8 + (1 << 20);
    if (size > most) return `file too large: ${size} bytes, more than an image of at most ${o.limitInputPixels} pixels can take (${most})`;
    if (size > maxItemBytes()) {
      return `file too large: ${size} bytes, more than the ${formatBytes(maxItemBytes())} one image may take of the memory budget`;
    }
    buf = ds instanceof FileDataset ? ds.read(i) : readFileSync(ds.name(i));
  } catch (e) {
    return `cannot read file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (buf.length === 0) return 'empty file (0 bytes)';
  const sharpOpts = { failOn: 'error', limitInputPixels: o.limitInputPixels, sequentialRead: true } as const;
  let width: number;
  let height: number;
  let orientation: number;
  const head = probeImage(buf);
  if (head) {
    ({ width, height, orientation } = head);
  } else {
    try {
      const m = await sharp(buf, sharpOpts).metadata();
      width = m.autoOrient.width;
      height = m.autoOrient.height;
      orientation = m.orientation ?? 1;
    } catch (e) {
      return `not a readable image: ${firstLine(e)}`;
    }
  }
  if (width * height > o.limitInputPixels)
    return `too many pixels: ${width}×${height} exceeds the limit of ${o.limitInputPixels} (limitInputPixels)`;
  const plan = tf.plan(rng, width, height);
  const single = plan.views.length === 1 ? plan.views[0] : undefined;
  const fast = single && single.w === t.width && single.h === t.height && head?.format === 'jpeg' && orientation === 1;
  if (fast && !plan.jitter && t.layout === 'nchw-f32' && o.kernel === 'linear' && o.native !== false && endsWithEoi(buf)) {
    // The fast path: decode only what the view needs, at a DCT-reduced size, straight into the
    // batch. Anything it does not handle (CMYK, a colour JPEG for a gray batch) or rejects
    // (corrupt data) goes on to sharp, which decides and words the error.
    const row = slot * t.views;
    const r = await renderJpegView(
      buf,
      t.x as Float32Array,
      row * t.channels * t.width * t.height,
      t.channels,
      single!,
      plan.scale,
      plan.bias,
    );
    if (r.kind === 'ok') {
      for (let c = 0; c < t.channels; c++) t.offset[row * t.channels + c] = plan.offset[c] ?? 0;
      return null;
    }
  }
  // One sharp pipeline per distinct resize: 10-crop shares one, multi-scale has one per scale.
  const groups = new Map<string, number[]>();
  plan.views.forEach((v, k) => {
    const key = `${v.sw}x${v.sh}`;
    groups.set(key, [...(groups.get(key) ?? []), k]);
  });
  for (const ks of groups.values()) {
    const first = plan.views[ks[0] ?? 0];
    if (!first) continue;
    // A single view: ask sharp for just the window's part inside the image.
    const only = ks.length === 1 ? first : null;
    const x0 = only ? Math.max(0, only.left) : 0;
    const y0 = only ? Math.max(0, only.top) : 0;
    const x1 = only ? Math.min(only.sw, only.left + only.w) : first.sw;
    const y1 = only ? Math.min(only.sh, only.top + only.h) : first.sh;
    let src: Image8 | null = null;
    if (x1 > x0 && y1 > y0) {
      try {
        let p = sharp(buf, sharpOpts);
        if (orientation !== 1) p = p.autoOrient();
        if (first.sw !== width || first.sh !== height) p = p.resize(first.sw, first.sh, { fit: 'fill', kernel: o.kernel });
        if (x0 !== 0 || y0 !== 0 || x1 !== first.sw || y1 !== first.sh)
          p = p.extract({ left: x0, top: y0, width: x1 - x0, height: y1 - y0 });
        const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
        src = { data, width: info.width, height: info.height, channels: info.channels };
      } catch (e) {
        return `cannot decode: ${firstLine(e)}`;
      }
      if (src.channels >= 3 && t.channels === 1) src = toGray(src);
    }
    for (const k of ks) {
      const v = plan.views[k];
      if (!v) continue;
      const frame: SourceFrame = { kx: 1, ky: 1, offX: x0, offY: y0 };
      emit(
        src ?? { data: new Uint8Array(t.channels), width: 1, height: 1, channels: t.channels },
        src ? frame : { kx: 1, ky: 1, offX: -1e9, offY: -1e9 },
        v,
        plan,
        t,
        slot * t.views + k,
      );
    }
  }
  return null;
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0] ?? 'unknown error';
}

function emit(src: Image8, frame: SourceFrame, v: View, plan: Plan, t: BatchTarget, row: number): void {
  if (v.w !== t.width || v.h !== t.height) {
    throw new UsageError(
      `Expected every view to be ${t.width}×${t.height} (the transform's output) but one is ${v.w}×${v.h}; end the transform with a crop or resize`,
    );
  }
  const plane = v.w * v.h;
  for (let c = 0; c < t.channels; c++) t.offset[row * t.channels + c] = plan.offset[c] ?? 0;
  if (
    !plan.jitter &&
    frame.kx === 1 &&
    frame.ky === 1 &&
    Number.isInteger(frame.offX) &&
    Number.isInteger(frame.offY) &&
    !(src.channels >= 3 && t.channels === 1)
  ) {
    copyWindow(src, frame.offX, frame.offY, v, t.channels, plan.scale, plan.bias, t.x, row * t.channels * plane);
    return;
  }
  const planar = new Float32Array(t.channels * plane);
  renderView(src, frame, v, t.channels, planar);
  if (plan.jitter) applyColourJitter(planar, t.channels, plane, plan.jitter);
  if (t.layout === 'nchw-f32')
    writePlanarF32(planar, t.channels, plane, plan.scale, plan.bias, t.x as Float32Array, row * t.channels * plane);
  else writeInterleavedU8(planar, t.channels, plane, t.x as Uint8Array, row * t.channels * plane);
}
