/**
 * Files written to hurt: decompression bombs (a gzipped IDX whose body inflates far past its header,
 * a small progressive JPEG whose header claims 16000×16000) are refused in little time and memory,
 * measured in a child process; data whose honest size is over the memory budget (an IDX header of
 * 2 M images, a CIFAR batch, a list, an image in a tar) is refused or skipped before it is read;
 * symlinked class folders and images are followed, link loops refused; missing and unreadable data
 * files are one line, exit 2.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { encodeCifar, encodeIdx, imageFolder, openDataset, UsageError, writeIdx } from '../../src/data/index.js';
import { assertUsageError, ilsvrc, MAIN, type Run } from '../cli/run.js';
import { jpegBomb, writeCifarBomb, writeHonestIdxBomb, writeIdxBomb, writeTar } from './bombs.js';
import { jpeg, writeLayout } from './ilsvrc-layout.js';

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
function measure(body: string, env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  const script = `
    const data = await import(${JSON.stringify(DATA)});
    const t0 = performance.now();
    let result = null, error;
    try { result = await (async () => { ${body} })(); } catch (e) { error = e.name + ': ' + e.message; }
    process.stdout.write(JSON.stringify({ ms: performance.now() - t0, maxRssMb: process.resourceUsage().maxRSS / 1024, result, error }));`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { maxBuffer: 1 << 20, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Measured);
      },
    );
  });
}

describe('decompression bombs', () => {
  it('a 1.5 MB gzipped IDX that inflates to 1.5 GiB is refused after reading no more than its header declares', async () => {
    const dir = path.join(root, 'idx-bomb');
    await fs.mkdir(dir);
    const file = path.join(dir, 'train-images-idx3-ubyte.gz');
    await writeIdxBomb(file);
    assert.ok((await fs.stat(file)).size < 2e6, 'small on disk');
    const m = await measure(`return (await data.readIdx(${JSON.stringify(file)})).dims;`);
    assert.match(
      m.error ?? '',
      /^UsageError: Expected 784 bytes of data for dims \[1, 28, 28\] in .*train-images-idx3-ubyte\.gz but it inflates to more/,
    );
    assert.ok(m.ms < 3000, `${m.ms} ms`);
    assert.ok(m.maxRssMb < 400, `peak RSS ${m.maxRssMb} MB`);

    // A header that declares more than the file can hold is refused before inflating at all.
    const liar = path.join(dir, 'liar.gz');
    await fs.writeFile(
      liar,
      gzipSync(
        Buffer.concat([
          Buffer.from(encodeIdx({ dims: [1, 1, 1], data: new Uint8Array(1) }).subarray(0, 4)),
          Buffer.from([0, 0x10, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0]),
        ]),
      ),
    );
    const l = await measure(`return (await data.readIdx(${JSON.stringify(liar)})).dims;`);
    assert.match(l.error ?? '', /to fit in what \d+ bytes of gzip can hold .* but it declares/);
  });

  it('a small progressive JPEG whose header claims 16000×16000 is skipped, named, without decoding it', async () => {
    const dir = path.join(root, 'jpeg-bomb');
    await fs.mkdir(dir);
    const { bomb, small } = await jpegBomb();
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

async function png(file: string, value: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: value, g: value, b: value } } })
    .png()
    .toFile(file);
}

describe('symbolic links in an ImageFolder', () => {
  it("are followed, for class folders and for images (as torchvision does), in torchvision's order", async () => {
    const store = path.join(root, 'store');
    await png(path.join(store, 'cats', 'c1.png'), 10);
    await png(path.join(store, 'cats', 'c2.png'), 20);
    await png(path.join(store, 'dog.png'), 30);
    const dir = path.join(root, 'linked');
    await fs.mkdir(path.join(dir, 'dog', 'more'), { recursive: true });
    await fs.symlink(path.join(store, 'cats'), path.join(dir, 'cat'));
    await fs.symlink(path.join(store, 'dog.png'), path.join(dir, 'dog', 'a.png'));
    await png(path.join(dir, 'dog', 'b.png'), 40);
    await png(path.join(dir, 'dog', 'more', 'c.png'), 50);
    await fs.symlink(path.join(store, 'nothing-here.png'), path.join(dir, 'dog', 'dangling.png'));
    const s = await openDataset(dir, { valFraction: 0.5, seed: 0 });
    assert.deepEqual(s.classes, ['cat', 'dog']);
    const all = [s.train, s.val]
      .flatMap((d) => Array.from({ length: d.length }, (_, i) => `${d.label(i)} ${path.relative(dir, d.name(i))}`))
      .sort();
    // The dangling link is listed (and reported as unreadable when loaded), never silently dropped.
    assert.deepEqual(all, ['0 cat/c1.png', '0 cat/c2.png', '1 dog/a.png', '1 dog/b.png', '1 dog/dangling.png', '1 dog/more/c.png']);
    const { dataset } = await imageFolder(dir);
    assert.deepEqual(
      Array.from({ length: dataset.length }, (_, i) => path.relative(dir, dataset.name(i))),
      ['cat/c1.png', 'cat/c2.png', 'dog/a.png', 'dog/b.png', 'dog/dangling.png', 'dog/more/c.png'],
    );
  });

  it('a link back to a folder that contains it is one line naming the link, exit 2', async () => {
    const dir = path.join(root, 'loop');
    await png(path.join(dir, 'a', 'x.png'), 1);
    await png(path.join(dir, 'b', 'y.png'), 2);
    await fs.symlink(dir, path.join(dir, 'b', 'up'));
    await assert.rejects(
      openDataset(dir),
      (e: unknown) => e instanceof UsageError && /without folder cycles but .*b\/up leads back to/.test(e.message),
    );
    const self = path.join(root, 'self');
    await png(path.join(self, 'a', 'x.png'), 1);
    await fs.symlink(self, path.join(self, 'c'));
    assertUsageError(await ilsvrc(['train', 'vgg-a', '--data', self]), 'folder cycles', `${path.join(self, 'c')} leads back to`);
  });
});

describe('missing and unreadable data files', () => {
  it('CIFAR without its test split is one line naming the missing file, exit 2', async () => {
    const dir = path.join(root, 'cifar-no-test');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'data_batch_1.bin'), encodeCifar({ labels: Uint8Array.of(1, 2), images: new Uint8Array(2 * 3072) }));
    assertUsageError(
      await ilsvrc(['train', 'vgg-a', '--data', `cifar:${dir}`]),
      `Expected test_batch.bin (CIFAR-10's test split) in ${dir} but it is missing`,
    );
    const c100 = path.join(root, 'cifar100-no-test');
    await fs.mkdir(c100);
    await fs.writeFile(
      path.join(c100, 'train.bin'),
      encodeCifar({ labels: Uint8Array.of(1), images: new Uint8Array(3072) }, Uint8Array.of(0)),
    );
    assertUsageError(await ilsvrc(['train', 'vgg-a', '--data', `cifar:${c100}`]), 'Expected test.bin');
  });

  // Permission bits do not stop root: run the CLI as an unprivileged user where we can.
  const asUser = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
  it(
    'permission denied on a data folder or file is one line naming it, exit 2',
    { skip: process.platform === 'win32' && 'POSIX permissions' },
    async () => {
      const run = (args: string[]): Promise<Run> =>
        asUser.length === 0
          ? ilsvrc(args)
          : new Promise((resolve) => {
              const t0 = Date.now();
              execFile(
                asUser[0]!,
                [...asUser.slice(1), process.execPath, MAIN, ...args],
                { env: { ...process.env, ILSVRC_DEBUG: '', HOME: '/tmp' } },
                (err, stdout, stderr) => {
                  resolve({
                    code: err && typeof err.code === 'number' ? err.code : err ? -1 : 0,
                    stdout,
                    stderr,
                    seconds: (Date.now() - t0) / 1000,
                  });
                },
              );
            });
      const dir = path.join(root, 'perm');
      await fs.chmod(root, 0o755);
      // Run folders where the unprivileged user may write: the run's lock comes before the data.
      const outs = path.join(root, 'perm-outs');
      await fs.mkdir(outs, { mode: 0o777 });
      await fs.chmod(outs, 0o777);
      let runs = 0;
      const out = (): string[] => ['--out', path.join(outs, `r${runs++}`)];
      await png(path.join(dir, 'folder', 'a', 'x.png'), 1);
      await fs.chmod(path.join(dir, 'folder'), 0o000);
      const idx = path.join(dir, 'idx');
      await fs.mkdir(idx);
      for (const p of ['train', 't10k']) {
        await writeIdx(path.join(idx, `${p}-images-idx3-ubyte`), { dims: [1, 28, 28], data: new Uint8Array(784) });
        await writeIdx(path.join(idx, `${p}-labels-idx1-ubyte`), { dims: [1], data: Uint8Array.of(0) });
      }
      await fs.chmod(path.join(idx, 't10k-images-idx3-ubyte'), 0o000);
      const cifar = path.join(dir, 'cifar');
      await fs.mkdir(cifar);
      await fs.writeFile(path.join(cifar, 'data_batch_1.bin'), encodeCifar({ labels: Uint8Array.of(1), images: new Uint8Array(3072) }));
      await fs.writeFile(path.join(cifar, 'test_batch.bin'), encodeCifar({ labels: Uint8Array.of(1), images: new Uint8Array(3072) }), {
        mode: 0o000,
      });
      assertUsageError(
        await run(['train', 'vgg-a', '--data', path.join(dir, 'folder'), ...out()]),
        `cannot read ${path.join(dir, 'folder')}`,
        'permission denied (EACCES)',
      );
      assertUsageError(
        await run(['train', 'vgg-a', '--data', `idx:${idx}`, ...out()]),
        `cannot read ${path.join(idx, 't10k-images-idx3-ubyte')}`,
        'permission denied (EACCES)',
      );
      assertUsageError(
        await run(['train', 'vgg-a', '--data', `cifar:${cifar}`, ...out()]),
        `cannot read ${path.join(cifar, 'test_batch.bin')}`,
        'permission denied (EACCES)',
      );
      // Behind a folder that cannot be entered: not "does not exist" (what a blanket catch said).
      assertUsageError(
        await run(['train', 'vgg-a', '--data', path.join(dir, 'folder', 'a'), ...out()]),
        `cannot read ${path.join(dir, 'folder', 'a')}`,
        'permission denied (EACCES)',
      );
      await fs.chmod(path.join(dir, 'folder'), 0o755);
      await fs.chmod(idx, 0o000);
      assertUsageError(
        await run(['train', 'vgg-a', '--data', `idx:${idx}`, ...out()]),
        `cannot read ${path.join(idx, 'train-images-idx3-ubyte')}`,
        'permission denied (EACCES)',
      );
      await fs.chmod(idx, 0o755);
    },
  );
});

describe('inconsistent data is refused, not trained on', () => {
  it('IDX and CIFAR test splits must match the training split; val must not have class folders that train lacks; huge files are skipped unread', async () => {
    const idx = path.join(root, 'idx-mismatch');
    await fs.mkdir(idx);
    const pair = async (p: string, n: number, side: number, labels: number[]): Promise<void> => {
      await writeIdx(path.join(idx, `${p}-images-idx3-ubyte`), { dims: [n, side, side], data: new Uint8Array(n * side * side) });
      await writeIdx(path.join(idx, `${p}-labels-idx1-ubyte`), { dims: [n], data: Uint8Array.from(labels) });
    };
    await pair('train', 2, 28, [0, 1]);
    await pair('t10k', 2, 32, [0, 1]);
    await assert.rejects(openDataset(`idx:${idx}`), /Expected 28×28 images in .*t10k-images-idx3-ubyte .* but they are 32×32/);
    await pair('t10k', 2, 28, [1, 7]);
    await assert.rejects(openDataset(`idx:${idx}`), /Expected labels 0–1 .* in .*t10k-labels-idx1-ubyte but label 1 is 7/);
    await writeIdx(path.join(idx, 't10k-labels-idx1-ubyte'), { dims: [3], data: Uint8Array.of(0, 1, 1) });
    await assert.rejects(openDataset(`idx:${idx}`), /Expected 2 labels for .*t10k-images-idx3-ubyte but .*t10k-labels-idx1-ubyte holds 3$/);

    const cifar = path.join(root, 'cifar-labels');
    await fs.mkdir(cifar);
    await fs.writeFile(
      path.join(cifar, 'data_batch_1.bin'),
      encodeCifar({ labels: Uint8Array.of(0, 1), images: new Uint8Array(2 * 3072) }),
    );
    await fs.writeFile(path.join(cifar, 'test_batch.bin'), encodeCifar({ labels: Uint8Array.of(9), images: new Uint8Array(3072) }));
    await assert.rejects(openDataset(`cifar:${cifar}`), /Expected labels 0–1 .*test_batch\.bin but record 0 has 9/);

    const split = path.join(root, 'split');
    for (const [s, c] of [
      ['train', 'a'],
      ['train', 'b'],
      ['val', 'a'],
      ['val', 'b'],
      ['val', 'zebra'],
    ])
      await png(path.join(split, s!, c!, 'x.png'), 5);
    await assert.rejects(openDataset(split), /Expected only the training set's class folders in .*val but 'zebra' is not among them/);

    const big = path.join(root, 'big.png');
    const small = path.join(root, 'small.png');
    await png(small, 9);
    await fs.writeFile(big, Buffer.concat([await fs.readFile(small), Buffer.alloc(1 << 21)]));
    const m = await measure(`
      const l = new data.Loader(new data.FileDataset([${JSON.stringify(big)}, ${JSON.stringify(small)}], Int32Array.of(0, 1)), data.Transforms.create(3).resize(8, 8), { batchSize: 2, shuffle: false, seed: 0, dropLast: false, channels: 3, limitInputPixels: 1000 });
      const b = await l.batch(0, 0);
      return { labels: [...b.labels], skipped: l.skipped() };`);
    const r = m.result as { labels: number[]; skipped: { path: string; reason: string }[] };
    assert.deepEqual(r.labels, [-1, 1]);
    assert.match(r.skipped[0]?.reason ?? '', /^file too large: \d+ bytes, more than an image of at most 1000 pixels can take/);
  });
});

/** A few-second training run on whatever --data is given (the CLI as a user runs it). */
const SHORT = ['train', 'vgg-a', '--width', '0.0625', '--input-size', '32', '--init', 'kaiming', '--batch-size', '4', '--threads', '1'];
SHORT.push('--max-steps', '1');

describe('data larger than the memory budget is refused before it is read', () => {
  it('an honest IDX header (2 M images of 28×28: 1.5 GB in a 1.5 MB gzip) is refused in seconds, naming the file, the size and the budget', async () => {
    const dir = path.join(root, 'idx-honest');
    const file = await writeHonestIdxBomb(dir);
    assert.ok((await fs.stat(file)).size < 2e6, 'small on disk');
    const r = await ilsvrc(
      [...SHORT, '--data', `idx:${dir}`, '--out', path.join(root, 'idx-honest-run')],
      { ILSVRC_MEMORY_BUDGET: '1G' },
      60_000,
    );
    assertUsageError(r, file, 'declares 2000000 images of 28×28 (1.5 GB)', 'memory budget (1.0 GB', 'needs 1.5 GB');
    assert.ok(r.seconds < 10, `refused after ${r.seconds} s`);
    // readIdx alone: the header's promise is checked before a byte of data is inflated.
    const m = await measure(`return (await data.readIdx(${JSON.stringify(file)})).dims;`, { ILSVRC_MEMORY_BUDGET: '1G' });
    assert.match(m.error ?? '', /^UsageError: Expected the data of .*train-images-idx3-ubyte\.gz to fit the memory budget \(1\.0 GB/);
    assert.match(m.error ?? '', / but it needs 1\.5 GB; its header declares \[2000000, 28, 28\]/);
    assert.ok(m.maxRssMb < 200, `peak RSS ${m.maxRssMb} MB`);
  });

  it("a CIFAR batch file larger than the budget is refused from its size, unread; a label out of CIFAR-10's range is refused naming the record", async () => {
    const dir = path.join(root, 'cifar-big');
    // 40 000 records, 123 MB (a sparse file): over a 64 MB budget.
    const file = await writeCifarBomb(dir, 40_000);
    const r = await ilsvrc(
      [...SHORT, '--data', `cifar:${dir}`, '--out', path.join(root, 'cifar-big-run')],
      { ILSVRC_MEMORY_BUDGET: '64M' },
      60_000,
    );
    assertUsageError(r, `the CIFAR records of ${file}`, 'memory budget (64.0 MB', 'needs 117.', '40000 records of 3073 bytes');
    assert.ok(r.seconds < 10, `refused after ${r.seconds} s`);

    const labels = path.join(root, 'cifar-label');
    await fs.mkdir(labels);
    await fs.writeFile(
      path.join(labels, 'data_batch_1.bin'),
      encodeCifar({ labels: Uint8Array.of(0, 12), images: new Uint8Array(2 * 3072) }),
    );
    await fs.writeFile(path.join(labels, 'test_batch.bin'), encodeCifar({ labels: Uint8Array.of(0), images: new Uint8Array(3072) }));
    assertUsageError(
      await ilsvrc([...SHORT, '--data', `cifar:${labels}`, '--out', path.join(root, 'cifar-label-run')]),
      `Expected a label 0–9 (CIFAR-10) in record 1 of ${path.join(labels, 'data_batch_1.bin')} but it has 12`,
    );
    await fs.writeFile(
      path.join(labels, 'data_batch_1.bin'),
      encodeCifar({ labels: Uint8Array.of(0, 1), images: new Uint8Array(2 * 3072) }),
    );
    await fs.writeFile(path.join(labels, 'batches.meta.txt'), 'cat\ndog\ncat\n');
    assertUsageError(
      await ilsvrc([...SHORT, '--data', `cifar:${labels}`, '--out', path.join(root, 'cifar-names-run')]),
      `Expected each class name once in ${path.join(labels, 'batches.meta.txt')} but 'cat' names classes 0 and 2`,
    );
  });

  it('a list read whole (synset words, ground truth) that is a pipe or larger than any list is refused unread', async () => {
    const L = await writeLayout(path.join(root, 'lists'));
    const words = path.join(L.folders, 'synset_words.txt');
    await fs.rm(words);
    execFileSync('mkfifo', [words]);
    const out = path.join(root, 'lists-run');
    const r = await ilsvrc([...SHORT, '--data', `ilsvrc:${L.folders}`, '--out', out], {}, 60_000);
    assertUsageError(r, `Expected the synset words at ${words} to be a regular file but it is a pipe`);
    await fs.rm(words);
    const csv = path.join(L.tars, 'LOC_val_solution.csv');
    await fs.truncate(csv, 100 << 20);
    assertUsageError(
      await ilsvrc([...SHORT, '--data', `ilsvrc:${L.tars}`, '--out', out], {}, 60_000),
      `Expected the validation solution ${csv} to be at most 64.0 MB but it is 100.0 MB`,
    );
  });

  it('an image in a tar larger than its share of the budget is skipped unread and named, and the run goes on', async () => {
    const L = await writeLayout(path.join(root, 'tar-big'));
    const synset = path.join(L.tars, 'train', 'n01443537.tar');
    const members = await Promise.all([0, 1, 2].map(async (j) => ({ name: `n01443537_10${j}.JPEG`, body: await jpeg(1, j) })));
    // 300 MB of hole: a JPEG by name, nothing on disk.
    writeTar(synset, [...members, { name: 'n01443537_999.JPEG', size: 300 << 20 }]);
    const r = await ilsvrc(
      [...SHORT, '--data', `ilsvrc:${L.tars}`, '--max-steps', '0', '--epochs', '1', '--out', path.join(root, 'tar-big-run')],
      { ILSVRC_MEMORY_BUDGET: '64M' },
      120_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /n01443537\.tar:n01443537_999\.JPEG: file too large: 314572800 bytes, more than the 4\.0 MB one image may take of the memory budget/,
    );
  });
});
