/**
 * Files written to hurt: decompression bombs (a gzipped IDX whose body inflates far past its header,
 * a small progressive JPEG whose header claims 16000×16000) are refused in little time and memory,
 * measured in a child process; symlinked class folders and images are followed, link loops refused;
 * missing and unreadable data files are one line, exit 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { encodeIdx } from '../../src/data/index.js';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'ilsvrc-hostile-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const DATA = fileURLToPath(new URL('../../src/data/index.js', import.meta.url));

interface Measured {
  ms: number;
  /** Peak resident set of the whole child process, MB. */
  maxRssMb: number;
  result: unknown;
  error?: string;
}

/** Runs `body` (an async function body with `data` = the data module) in a fresh Node process; time and peak RSS. */
function measure(body: string): Promise<Measured> {
  const script = `
    const data = await import(${JSON.stringify(DATA)});
    const t0 = performance.now();
    let result = null, error;
    try { result = await (async () => { ${body} })(); } catch (e) { error = e.name + ': ' + e.message; }
    process.stdout.write(JSON.stringify({ ms: performance.now() - t0, maxRssMb: process.resourceUsage().maxRSS / 1024, result, error }));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Measured);
    });
  });
}

describe('decompression bombs', () => {
  it('a 1.5 MB gzipped IDX that inflates to 1.5 GiB is refused after reading no more than its header declares', async () => {
    const dir = path.join(root, 'idx-bomb');
    await fs.mkdir(dir);
    // gzip members concatenate: the header's 28×28 image, then 96 members of 16 MiB of zeros each.
    const zeros = gzipSync(Buffer.alloc(16 << 20), { level: 9 });
    const head = gzipSync(encodeIdx({ dims: [1, 28, 28], data: new Uint8Array(784) }));
    const bomb = Buffer.concat([head, ...Array.from({ length: 96 }, () => zeros)]);
    assert.ok(bomb.length < 2e6, `${bomb.length} bytes on disk`);
    const file = path.join(dir, 'train-images-idx3-ubyte.gz');
    await fs.writeFile(file, bomb);
    const m = await measure(`return (await data.readIdx(${JSON.stringify(file)})).dims;`);
    assert.match(m.error ?? '', /^UsageError: Expected 784 bytes of data for dims \[1, 28, 28\] in .*train-images-idx3-ubyte\.gz but it inflates to more/);
    assert.ok(m.ms < 3000, `${m.ms} ms`);
    assert.ok(m.maxRssMb < 400, `peak RSS ${m.maxRssMb} MB`);

    // A header that declares more than the file can hold is refused before inflating at all.
    const liar = path.join(dir, 'liar.gz');
    await fs.writeFile(liar, gzipSync(Buffer.concat([Buffer.from(encodeIdx({ dims: [1, 1, 1], data: new Uint8Array(1) }).subarray(0, 4)), Buffer.from([0, 0x10, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0])])));
    const l = await measure(`return (await data.readIdx(${JSON.stringify(liar)})).dims;`);
    assert.match(l.error ?? '', /to fit in what \d+ bytes of gzip can hold .* but it declares/);
  });

  it('a small progressive JPEG whose header claims 16000×16000 is skipped, named, without decoding it', async () => {
    const dir = path.join(root, 'jpeg-bomb');
    await fs.mkdir(dir);
    const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 90 } } }).jpeg({ progressive: true }).toBuffer();
    // SOF2 (progressive): FF C2, length, precision, then height and width.
    const sof = small.indexOf(Buffer.from([0xff, 0xc2]));
    assert.ok(sof > 0);
    const bomb = Buffer.from(small);
    bomb.writeUInt16BE(16000, sof + 5);
    bomb.writeUInt16BE(16000, sof + 7);
    const file = path.join(dir, 'bomb.jpg');
    const ok = path.join(dir, 'ok.jpg');
    await fs.writeFile(file, bomb);
    await fs.writeFile(ok, small);
    for (const recipe of ['alexnet', 'googlenet']) {
      const m = await measure(`
        const ds = new data.FileDataset([${JSON.stringify(file)}, ${JSON.stringify(ok)}], Int32Array.of(0, 1));
        const l = new data.Loader(ds, data.Transforms.train(${JSON.stringify(recipe)}, { size: 224, channels: 3 }), { batchSize: 2, shuffle: false, seed: 0, dropLast: false, channels: 3 });
        const b = await l.batch(0, 0);
        await l.close();
        return { labels: [...b.labels], skipped: l.skipped() };`);
      assert.equal(m.error, undefined);
      const r = m.result as { labels: number[]; skipped: { path: string; reason: string }[] };
      assert.deepEqual(r.labels, [-1, 1]);
      assert.equal(r.skipped[0]?.path, file);
      assert.match(r.skipped[0]?.reason ?? '', /too many pixels: 16000×16000 exceeds the limit of \d+/);
      assert.ok(m.ms < 3000, `${m.ms} ms`);
      assert.ok(m.maxRssMb < 400, `peak RSS ${m.maxRssMb} MB`);
    }
  });
});
