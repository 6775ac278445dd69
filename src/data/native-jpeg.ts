/**
 * The fast JPEG path (native/jpeg_view.c, built by scripts/build-native into build/native/): one
 * view of a JPEG decoded at a DCT-reduced size, cropped to the rows and columns it needs, resized,
 * mirrored and normalised into the batch on a libuv thread. Absent when the build had no C
 * compiler or libjpeg headers, or when ILSVRC_NATIVE_JPEG=0; the pipeline then uses sharp alone.
 */
import { nativeAddon } from '../util/native.js';
import type { View } from './pixels.js';

interface Addon {
  renderJpegView(
    jpeg: Uint8Array,
    out: Float32Array,
    params: Float64Array,
    callback: (status: number, message: string, dct: number) => void,
  ): void;
  jpegLibVersion: number;
}

/** What one call did: 'ok' (written), 'unsupported' (decode another way), or libjpeg's error. */
type NativeResult = { kind: 'ok'; dct: number } | { kind: 'unsupported' } | { kind: 'error'; message: string };

/** The addon, or null (not built, or disabled with ILSVRC_NATIVE_JPEG=0). */
export const nativeJpeg = nativeAddon<Addon>('jpeg_view', 'ILSVRC_NATIVE_JPEG', 'JPEGs are decoded with sharp');

/** A JPEG's last marker is EOI (FF D9), possibly followed by padding; a truncated file has none. */
export function endsWithEoi(buf: Uint8Array): boolean {
  for (let i = buf.length - 1, seen = 0; i > 0 && seen < 64; i--, seen++) {
    if (buf[i] === 0xd9 && buf[i - 1] === 0xff) return true;
  }
  return false;
}

/**
 * Renders `view` of `jpeg` into out[offset …] as planar float (value·scale[c] + bias[c], values on
 * the 0–255 scale, 0 outside the image).
 */
export function renderJpegView(
  jpeg: Uint8Array,
  out: Float32Array,
  offset: number,
  channels: 1 | 3,
  view: View,
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
): Promise<NativeResult> {
  const a = nativeJpeg();
  if (!a) return Promise.resolve({ kind: 'unsupported' });
  const p = new Float64Array(15);
  p.set([offset, channels, view.sw, view.sh, view.left, view.top, view.w, view.h, view.flip ? 1 : 0]);
  for (let c = 0; c < 3; c++) {
    p[9 + c] = scale[Math.min(c, scale.length - 1)] ?? 1;
    p[12 + c] = bias[Math.min(c, bias.length - 1)] ?? 0;
  }
  return new Promise((resolve) => {
    a.renderJpegView(jpeg, out, p, (status, message, dct) => {
      resolve(status === 0 ? { kind: 'ok', dct } : status === 1 ? { kind: 'unsupported' } : { kind: 'error', message });
    });
  });
}
