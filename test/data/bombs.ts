/** Decompression bombs, small on disk: written by the tests and by scripts/torture. */
import { closeSync, promises as fs, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { encodeCifar, encodeIdx } from '../../src/data/index.js';

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
  const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .jpeg({ progressive: true })
    .toBuffer();
  const sof = small.indexOf(Buffer.from([0xff, 0xc2]));
  if (sof < 0) throw new Error('no SOF2 marker in a progressive JPEG');
  const bomb = Buffer.from(small);
  bomb.writeUInt16BE(16000, sof + 5);
  bomb.writeUInt16BE(16000, sof + 7);
  return { bomb, small };
}

const MEMBER = 16 << 20;
let zeroMember: Buffer | undefined;

/** `bytes` zeros as gzip, in members of 16 MiB (gzip members concatenate): about 1/1000 of the size on disk. */
function gzipZeros(bytes: number): Buffer[] {
  zeroMember ??= gzipSync(Buffer.alloc(MEMBER), { level: 9 });
  const out = Array.from({ length: Math.floor(bytes / MEMBER) }, () => zeroMember!);
  if (bytes % MEMBER) out.push(gzipSync(Buffer.alloc(bytes % MEMBER), { level: 9 }));
  return out;
}

/**
 * An honest IDX bomb: train-images-idx3-ubyte.gz declares `count` images of 28×28 and holds every
 * byte of them (zeros): 2 M images are 1.5 GB inflated, about 1.5 MB on disk. Labels to match, and a
 * small t10k pair. Returns the images file.
 */
export async function writeHonestIdxBomb(dir: string, count = 2_000_000): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const head = (dims: number[]): Buffer => Buffer.from(encodeIdx({ dims, data: new Uint8Array(0) }));
  const images = join(dir, 'train-images-idx3-ubyte.gz');
  await fs.writeFile(images, Buffer.concat([gzipSync(head([count, 28, 28])), ...gzipZeros(count * 28 * 28)]));
  await fs.writeFile(join(dir, 'train-labels-idx1-ubyte.gz'), Buffer.concat([gzipSync(head([count])), ...gzipZeros(count)]));
  await fs.writeFile(join(dir, 't10k-images-idx3-ubyte'), encodeIdx({ dims: [1, 28, 28], data: new Uint8Array(784) }));
  await fs.writeFile(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx({ dims: [1], data: new Uint8Array(1) }));
  return images;
}

/** A file of `size` bytes that takes almost no room on disk: `head`, then a hole. */
export function writeSparse(file: string, size: number, head: Uint8Array = new Uint8Array(0)): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, head);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

/** A CIFAR-10 folder whose data_batch_1.bin holds `records` records (zeros, a sparse file) and a one-record test batch. */
export async function writeCifarBomb(dir: string, records: number): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = join(dir, 'data_batch_1.bin');
  writeSparse(file, records * 3073);
  await fs.writeFile(join(dir, 'test_batch.bin'), encodeCifar({ labels: Uint8Array.of(0), images: new Uint8Array(3072) }));
  return file;
}

/**
 * A ustar archive of `members`, each its bytes or a size (then a hole of that size: a member of
 * gigabytes costs nothing on disk). The tar reader under test is not used to write it.
 */
export function writeTar(file: string, members: readonly { name: string; body?: Uint8Array; size?: number }[]): void {
  const fd = openSync(file, 'w');
  let pos = 0;
  try {
    for (const m of members) {
      const size = m.body?.length ?? m.size ?? 0;
      const h = Buffer.alloc(512);
      h.write(m.name, 0, 100, 'utf8');
      h.write('0000644\0', 100);
      h.write('0000000\0', 108);
      h.write('0000000\0', 116);
      h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
      h.write('00000000000\0', 136);
      h.write('0', 156);
      h.write('ustar\0' + '00', 257, 'latin1');
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      writeSync(fd, h, 0, 512, pos);
      if (m.body) writeSync(fd, m.body, 0, m.body.length, pos + 512);
      pos += 512 + Math.ceil(size / 512) * 512;
    }
    ftruncateSync(fd, pos + 1024); // the end-of-archive marker: two zero blocks
  } finally {
    closeSync(fd);
  }
}
