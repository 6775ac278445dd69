/** Decompression bombs, small on disk: written by the tests and by scripts/torture. */
import { promises as fs } from 'node:fs';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { encodeIdx } from '../../src/data/index.js';

/**
 * A 1.5 MB gzipped IDX image file whose body inflates to 1.5 GiB: gzip members concatenate, so the
 * header's one 28×28 image is followed by 96 members of 16 MiB of zeros each.
 */
export async function writeIdxBomb(file: string): Promise<void> {
  const zeros = gzipSync(Buffer.alloc(16 << 20), { level: 9 });
  const head = gzipSync(encodeIdx({ dims: [1, 28, 28], data: new Uint8Array(784) }));
  await fs.writeFile(file, Buffer.concat([head, ...Array.from({ length: 96 }, () => zeros)]));
}

/** A small progressive JPEG whose header claims 16000×16000 (SOF2: FF C2, length, precision, height, width). */
export async function jpegBomb(): Promise<{ bomb: Buffer; small: Buffer }> {
  const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 90 } } }).jpeg({ progressive: true }).toBuffer();
  const sof = small.indexOf(Buffer.from([0xff, 0xc2]));
  if (sof < 0) throw new Error('no SOF2 marker in a progressive JPEG');
  const bomb = Buffer.from(small);
  bomb.writeUInt16BE(16000, sof + 5);
  bomb.writeUInt16BE(16000, sof + 7);
  return { bomb, small };
}
