/**
 * Pictures of what a network learned: grids of filters or feature maps (as in ZFNet's figures)
 * and heat maps over an image (occlusion, saliency). Pixel math is pure and returns RGB rasters
 * (HWC, uint8); PNG encoding happens at the end.
 */
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { checkInt, gridRaster, heatOverlayRaster, type GridOptions, type Tile } from './raster.js';

export { finiteRange, gridRaster, heatOverlayRaster, jet, upsampleBilinear, type Normalize, type Raster, type Tile } from './raster.js';

export async function imageGrid(tiles: readonly Tile[], options: GridOptions): Promise<{ png: Buffer; width: number; height: number }> {
  const r = gridRaster(tiles, options);
  return { png: await toPng(r.rgb, r.width, r.height), width: r.width, height: r.height };
}

// ---------------------------------------------------------------------------------------------
// Heat maps

export async function heatOverlay(
  image: Uint8Array,
  w: number,
  h: number,
  heat: Float32Array,
  hw: number,
  hh: number,
  alpha: number,
): Promise<Buffer> {
  return toPng(heatOverlayRaster(image, w, h, heat, hw, hh, alpha), w, h);
}

// ---------------------------------------------------------------------------------------------
// PNG

function checkRaster(rgb: Uint8Array, w: number, h: number): void {
  checkInt('width', w, 1);
  checkInt('height', h, 1);
  if (rgb.length !== w * h * 3) throw new RangeError(`Expected ${w * h * 3} bytes (${h}×${w}×3) for rgb but received ${rgb.length}`);
}

/** PNG via sharp (libspng, off the main thread). */
export async function toPng(rgb: Uint8Array, w: number, h: number): Promise<Buffer> {
  checkRaster(rgb, w, h);
  const input = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return sharp(input, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * A synchronous PNG encoder (filter 0, zlib), for rasters embedded in SVG while the SVG is built,
 * e.g. the cells of a heat map too large to draw as one rectangle each.
 */
export function encodePngSync(rgb: Uint8Array, w: number, h: number): Buffer {
  checkRaster(rgb, w, h);
  const stride = w * 3;
  const raw = Buffer.alloc((stride + 1) * h);
  for (let y = 0; y < h; y++) raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * The PNG with iTXt chunks (UTF-8 text: a class name or a "×" survives) after its header, so the
 * words drawn in a picture can also be read without looking at it.
 */
export function withText(png: Buffer, text: Readonly<Record<string, string>>): Buffer {
  const end = 8 + 8 + png.readUInt32BE(8) + 4; // signature, then IHDR
  const chunks = Object.entries(text).map(([k, v]) =>
    pngChunk('iTXt', Buffer.concat([Buffer.from(k, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(v, 'utf8')])),
  );
  return Buffer.concat([png.subarray(0, end), ...chunks, png.subarray(end)]);
}

/** The tEXt and iTXt (uncompressed) entries of a PNG. */
export function pngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let o = 8; o + 8 <= png.length;) {
    const n = png.readUInt32BE(o);
    const type = png.toString('latin1', o + 4, o + 8);
    const data = png.subarray(o + 8, o + 8 + n);
    const z = data.indexOf(0);
    if (type === 'tEXt' && z > 0) out[data.toString('latin1', 0, z)] = data.toString('latin1', z + 1);
    if (type === 'iTXt' && z > 0 && data[z + 1] === 0) {
      const lang = data.indexOf(0, z + 3);
      const translated = data.indexOf(0, lang + 1);
      out[data.toString('latin1', 0, z)] = data.toString('utf8', translated + 1);
    }
    o += 12 + n;
  }
  return out;
}
