// The native JPEG path (native/jpeg_view.c) against the JS resampler over sharp's full decode, on
// JPEGs the test writes: shrinks, enlargements, mirrors, windows partly outside the image, gray
// sources, the DCT-reduced decode, and the files it must hand back to sharp (CMYK, corrupt).
// ILSVRC_REQUIRE_NATIVE_JPEG=1 (set by .ci/run when it installed the compiler and headers) turns
// a missing build into a failure instead of a skip.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { FileDataset, Loader, Transforms } from '../../src/data/index.js';
import { endsWithEoi, nativeJpeg, renderJpegView } from '../../src/data/native-jpeg.js';
import { renderView, type View } from '../../src/data/pixels.js';

const built = nativeJpeg() !== null;
const required = process.env['ILSVRC_REQUIRE_NATIVE_JPEG'] === '1';
const skip = built ? false : 'native/jpeg_view.c is not built here (scripts/build-native needs a C compiler and libjpeg headers)';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'ilsvrc-native-jpeg-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** A smooth colour image with some detail: what photos look like to a resampler. */
function scene(width: number, height: number, channels: 1 | 3): Buffer {
  const d = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const v = 128 + 90 * Math.sin(x / (9 + 5 * c) + y / 23) * Math.cos(y / (13 + 3 * c) - x / 41) + 20 * Math.sin((x * y) / 500);
        d[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return d;
}

async function jpeg(width: number, height: number, channels: 1 | 3 = 3, progressive = false): Promise<Buffer> {
  const img = sharp(scene(width, height, channels), { raw: { width, height, channels } });
  return (channels === 1 ? img.toColourspace('b-w') : img).jpeg({ quality: 95, chromaSubsampling: '4:2:0', progressive }).toBuffer();
}

/** The reference: sharp decodes every pixel, the JS resampler renders the view. */
async function reference(buf: Buffer, view: View, channels: 1 | 3): Promise<Float32Array> {
  const img = sharp(buf);
  const { data, info } = await (channels === 1 ? img.toColourspace('b-w') : img).raw().toBuffer({ resolveWithObject: true });
  const out = new Float32Array(channels * view.w * view.h);
  renderView(
    { data, width: info.width, height: info.height, channels: info.channels },
    { kx: info.width / view.sw, ky: info.height / view.sh, offX: 0, offY: 0 },
    view,
    channels,
    out,
  );
  return out;
}

function diff(a: Float32Array, b: Float32Array, offset = 0): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? 0) - (b[offset + i] ?? 0));
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: sum / a.length };
}

describe('native JPEG path', () => {
  it('is built where the CI installed what it needs', { skip: required ? false : !built ? skip : false }, () => {
    assert.ok(built, 'ILSVRC_REQUIRE_NATIVE_JPEG=1 but build/native/jpeg_view.node is missing: see scripts/build-native');
  });

  for (const progressive of [false, true]) {
    it(
      `matches the JS resampler over a full decode: shrink, enlarge, mirror, partial windows (${progressive ? 'progressive' : 'baseline'})`,
      { skip },
      async () => {
        const buf = await jpeg(333, 250, 3, progressive);
        const views: View[] = [
          { sw: 333, sh: 250, left: 0, top: 0, w: 333, h: 250, flip: false }, // identity: the decoded pixels
          { sw: 240, sh: 180, left: 7, top: 11, w: 224, h: 160, flip: false }, // shrink ×1.39
          { sw: 240, sh: 180, left: 7, top: 11, w: 224, h: 160, flip: true },
          { sw: 900, sh: 676, left: 301, top: 97, w: 224, h: 224, flip: false }, // enlarge ×2.7, inner window
          { sw: 300, sh: 225, left: 150, top: 100, w: 224, h: 224, flip: true }, // window partly outside: padding
          { sw: 166, sh: 125, left: 0, top: 0, w: 64, h: 48, flip: false }, // ×0.5: decoded at 1/2 in the DCT
        ];
        for (const v of views) {
          const want = await reference(buf, v, 3);
          const got = new Float32Array(want.length + 17);
          const r = await renderJpegView(buf, got, 17, 3, v, [1, 1, 1], [0, 0, 0]);
          assert.equal(r.kind, 'ok', JSON.stringify(r));
          const d = diff(want, got, 17);
          const dct = r.kind === 'ok' ? r.dct : 0;
          // Full-size decodes agree with sharp's to rounding (the same libjpeg arithmetic; a few
          // pixels at the cropped iMCU edge differ by a few levels); a DCT-reduced decode is a
          // different (sharper) low-pass, so only its average is held close.
          if (dct === 8) assert.ok(d.max <= 12 && d.mean <= 0.35, `view ${JSON.stringify(v)}: max ${d.max}, mean ${d.mean}`);
          else assert.ok(d.mean <= 3, `view ${JSON.stringify(v)} at ${dct}/8: mean ${d.mean}`);
        }
      },
    );
  }

  it('applies scale and bias per channel and pads outside the image with the bias', { skip }, async () => {
    const buf = await jpeg(64, 48);
    const v: View = { sw: 64, sh: 48, left: 40, top: 0, w: 32, h: 8, flip: false }; // columns 64–71 are outside
    const plain = new Float32Array(3 * 32 * 8);
    await renderJpegView(buf, plain, 0, 3, v, [1, 1, 1], [0, 0, 0]);
    const norm = new Float32Array(3 * 32 * 8);
    const scale = [1 / 255 / 0.229, 1 / 255 / 0.224, 1 / 255 / 0.225];
    const bias = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225];
    await renderJpegView(buf, norm, 0, 3, v, scale, bias);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 32 * 8; i++) {
        const k = c * 256 + i;
        assert.ok(Math.abs((norm[k] ?? 0) - ((plain[k] ?? 0) * scale[c]! + bias[c]!)) < 1e-4);
        if (i % 32 >= 24) assert.equal(plain[k], 0, 'outside the image is 0 before normalisation');
      }
    }
  });

  it('feeds a gray JPEG as 1 channel and as 3 replicated channels', { skip }, async () => {
    const buf = await jpeg(120, 90, 1);
    const v: View = { sw: 100, sh: 75, left: 3, top: 2, w: 64, h: 64, flip: true };
    const one = new Float32Array(64 * 64);
    assert.equal((await renderJpegView(buf, one, 0, 1, v, [1], [0])).kind, 'ok');
    const d = diff(await reference(buf, v, 1), one);
    assert.ok(d.max <= 12 && d.mean <= 0.35, `gray: max ${d.max}, mean ${d.mean}`);
    const three = new Float32Array(3 * 64 * 64);
    assert.equal((await renderJpegView(buf, three, 0, 3, v, [1, 2, 3], [0, 0, 0])).kind, 'ok');
    for (let i = 0; i < 64 * 64; i++) {
      assert.equal(three[i], one[i]);
      assert.ok(Math.abs((three[4096 + i] ?? 0) - 2 * (one[i] ?? 0)) < 1e-3);
    }
  });

  it('hands CMYK and colour-for-gray back, and reports corrupt data without writing', { skip }, async () => {
    const v: View = { sw: 32, sh: 32, left: 0, top: 0, w: 32, h: 32, flip: false };
    const cmyk = await sharp(scene(32, 32, 3), { raw: { width: 32, height: 32, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();
    assert.equal((await renderJpegView(cmyk, new Float32Array(3 * 1024), 0, 3, v, [1, 1, 1], [0, 0, 0])).kind, 'unsupported');
    const colour = await jpeg(32, 32);
    assert.equal((await renderJpegView(colour, new Float32Array(1024), 0, 1, v, [1], [0])).kind, 'unsupported');
    // Scrambled entropy data (the header and the EOI marker intact).
    const bad = Buffer.from(await jpeg(200, 150));
    for (let i = Math.floor(bad.length * 0.4); i < bad.length - 2; i += 3) bad[i] = 0xff;
    assert.ok(endsWithEoi(bad));
    const out = new Float32Array(3 * 1024).fill(7);
    const r = await renderJpegView(bad, out, 0, 3, { ...v, sw: 200, sh: 150, left: 0, top: 100, w: 32, h: 32 }, [1, 1, 1], [0, 0, 0]);
    assert.equal(r.kind, 'error');
    assert.ok(
      out.every((x) => x === 7),
      'nothing written on error',
    );
    // A truncated file has no EOI: the loader never sends it here.
    const whole = await jpeg(64, 64);
    assert.ok(endsWithEoi(whole));
    assert.ok(!endsWithEoi(whole.subarray(0, whole.length >> 1)));
  });

  it('gives the loader byte-identical batches with any number of workers, close to the sharp-only path', { skip }, async () => {
    const dir = path.join(root, 'files');
    await fs.mkdir(dir);
    const files: string[] = [];
    for (let i = 0; i < 6; i++) {
      const f = path.join(dir, `${i}.jpg`);
      await fs.writeFile(f, await jpeg(180 + 20 * i, 300 - 25 * i));
      files.push(f);
    }
    const ds = new FileDataset(
      files,
      Int32Array.from(files, (_, i) => i % 2),
    );
    const tf = (): Transforms => Transforms.create(3).randomResizedCrop(96).hflip().normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]);
    const collect = async (workers: number, nativeJpeg: boolean): Promise<Float32Array> => {
      const l = new Loader(ds, tf(), { batchSize: 6, shuffle: true, seed: 5, dropLast: false, channels: 3, workers, nativeJpeg });
      try {
        for await (const b of l.epoch(0)) return Float32Array.from(b.x);
      } finally {
        await l.close();
      }
      throw new Error('no batch');
    };
    const a = await collect(0, true);
    const b = await collect(2, true);
    assert.deepEqual(Buffer.from(a.buffer), Buffer.from(b.buffer));
    const viaSharp = await collect(0, false);
    // Same crops, other decoder and resampler: close on average (normalised units: 1/64 per level).
    const d = diff(viaSharp, a);
    assert.ok(d.mean < 0.05, `native vs sharp: mean ${d.mean}`);
    assert.notDeepEqual(Buffer.from(a.buffer), Buffer.from(viaSharp.buffer), 'the option switches paths');
  });
});
