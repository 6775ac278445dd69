/**
 * `--data ilsvrc:DIR` on a miniature ILSVRC-2012 (ilsvrc-layout.ts): folders, per-synset tars and
 * the outer tar give the same dataset and the same batches (also from loader workers); the
 * devkit's ground truth and Kaggle's solution file give the same labels; what is missing or broken
 * is one line naming it, and so is data that contradicts itself (an image labelled twice, an empty
 * synset tar). The tar reader against the system's tar in its three formats.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type DatasetSplits, FileDataset, Loader, openDataset, Transforms, UsageError } from '../../src/data/index.js';
import { parseGroundTruth, parseSolution } from '../../src/data/ilsvrc.js';
import { indexTar, readMember } from '../../src/data/tar.js';
import { assertUsageError, ilsvrc } from '../cli/run.js';
import { writeTar } from './bombs.js';
import { ID_ORDER, LABELS, type Layout, TRAIN_PER_CLASS, WNIDS, writeLayout } from './ilsvrc-layout.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-2012-'));
let L: Layout;
before(async () => {
  L = await writeLayout(root);
});
after(() => rmSync(root, { recursive: true, force: true }));

async function batches(ds: DatasetSplits['train'], workers: number): Promise<{ x: Float32Array; labels: number[] }> {
  const loader = new Loader(ds, Transforms.eval('center', { size: 12, channels: 3 }), {
    batchSize: 4,
    shuffle: true,
    seed: 1,
    dropLast: false,
    channels: 3,
    workers,
  });
  const xs: number[] = [];
  const labels: number[] = [];
  try {
    for await (const b of loader.epoch(0)) {
      xs.push(...b.x);
      labels.push(...b.labels.slice(0, b.n));
    }
    assert.deepEqual(loader.skipped(), []);
  } finally {
    await loader.close();
  }
  return { x: Float32Array.from(xs), labels };
}

describe('ilsvrc:DIR', () => {
  test('folders, per-synset tars and the outer tar are the same dataset, batch for batch, with and without workers', async () => {
    const a = await openDataset(`ilsvrc:${L.folders}`);
    const b = await openDataset(`ilsvrc:${L.tars}`);
    const c = await openDataset(`ilsvrc:${L.outer}`);
    assert.deepEqual(a.classes, ['n01440764 tench', 'n01443537 goldfish', 'n01484850 great white shark']);
    assert.deepEqual(b.classes, a.classes, 'LOC_synset_mapping.txt names them as synset_words.txt');
    assert.deepEqual(c.classes, a.classes, "no words file: ImageNet-1k's words for its synsets");
    for (const d of [a, b, c]) {
      assert.equal(d.train.length, 3 * TRAIN_PER_CLASS);
      assert.deepEqual(Array.from(d.val.descriptor.labels), [...LABELS]);
    }
    assert.ok(b.train.name(0).endsWith('n01440764.tar:n01440764_100.JPEG'), b.train.name(0));
    assert.ok(c.train.name(0).endsWith('ILSVRC2012_img_train.tar:n01440764_100.JPEG'), c.train.name(0));
    const ref = await batches(a.train, 0);
    assert.deepEqual(ref.labels.slice().sort(), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    for (const [ds, workers, what] of [
      [b.train, 0, 'tars'],
      [b.train, 2, 'tars on 2 workers'],
      [c.train, 2, 'outer tar on 2 workers'],
    ] as const) {
      const got = await batches(ds, workers);
      assert.deepEqual(got.labels, ref.labels, what);
      assert.ok(Buffer.from(got.x.buffer).equals(Buffer.from(ref.x.buffer)), `${what}: the same pixels`);
    }
    const val = await batches(b.val, 2);
    assert.deepEqual(val.labels, (await batches(a.val, 0)).labels);
  });

  test('only the validation set and a words file are enough to evaluate; only the training set holds out a share', async () => {
    const dir = join(root, 'val-only');
    mkdirSync(dir);
    execFileSync('cp', ['-r', join(L.folders, 'val'), join(L.folders, 'ILSVRC2012_devkit_t12'), join(L.folders, 'synset_words.txt'), dir]);
    const v = await openDataset(`ilsvrc:${dir}`);
    assert.equal(v.classes.length, 3);
    assert.equal(v.train.length, 0);
    assert.deepEqual(Array.from(v.val.descriptor.labels), [...LABELS]);
    const t = join(root, 'train-only');
    mkdirSync(t);
    execFileSync('cp', ['-r', join(L.tars, 'train'), t]);
    const s = await openDataset(`ilsvrc:${t}`, { valFraction: 0.34 });
    assert.equal(s.train.length + s.val.length, 9);
    assert.equal(s.val.length, 3);
    assert.match(s.source, /no validation set: 3 training images held out/);
    assert.match(s.val.name(0), /train\/n01\d+\.tar:n01\d+_10\d\.JPEG$/, 'the held-out items are still tar members');
    assert.equal((await batches(s.val, 0)).labels.length, 3);
  });

  test('the devkit ground truth reads ids through synsets.txt; a sorted 1000-synset list is refused', () => {
    const t = parseGroundTruth('2\n3\n1\n', 'gt.txt', 'n01484850\nn01440764\nn01443537\n', 'synsets.txt');
    assert.deepEqual(
      [...t],
      [
        ['ILSVRC2012_val_00000001', 'n01440764'],
        ['ILSVRC2012_val_00000002', 'n01443537'],
        ['ILSVRC2012_val_00000003', 'n01484850'],
      ],
    );
    const sorted = Array.from({ length: 1000 }, (_, k) => `n${String(1440764 + k).padStart(8, '0')}`).join('\n');
    assert.throws(
      () => parseGroundTruth('1\n', 'gt.txt', sorted, 'synsets.txt'),
      /Expected synsets.txt in meta.mat's ILSVRC2012_ID order \(n02119789 first\) but it is sorted/,
    );
    assert.throws(
      () => parseGroundTruth('4\n', 'gt.txt', 'n01484850\nn01440764\nn01443537\n', 'synsets.txt'),
      /Expected an ILSVRC2012_ID from 1 to 3 \(the lines of synsets.txt\) on line 1 of gt.txt but received "4"/,
    );
    const s = parseSolution('ImageId,PredictionString\nILSVRC2012_val_00000007,n01443537 1 2 3 4 n01443537 5 6 7 8\n', 'sol.csv');
    assert.equal(s.get('ILSVRC2012_val_00000007'), 'n01443537');
    assert.throws(() => parseSolution('id,label\n', 'sol.csv'), /Expected the header 'ImageId,PredictionString' in sol.csv/);
  });

  test('what is missing or broken is one UsageError naming it', async () => {
    const fails = async (spec: string, re: RegExp): Promise<void> => {
      await assert.rejects(openDataset(spec), (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'));
    };
    const empty = join(root, 'empty');
    mkdirSync(empty);
    await fails(
      `ilsvrc:${empty}`,
      /Expected the training set \(train, .*\) or the validation set \(val, .*\) in .*empty but found neither/,
    );
    await fails(`ilsvrc:${join(root, 'nope')}`, /Expected an ILSVRC-2012 directory for --data ilsvrc:.*nope but it does not exist/);
    const noTruth = join(root, 'no-truth');
    mkdirSync(noTruth);
    execFileSync('cp', ['-r', join(L.folders, 'val'), noTruth]);
    await fails(
      `ilsvrc:${noTruth}`,
      /Expected the validation ground truth for .*val \(LOC_val_solution.csv, or the devkit's ILSVRC2012_validation_ground_truth.txt with meta.mat or synsets.txt, or ILSVRC2012_devkit_t12.tar.gz\) in .* but found none/,
    );
    writeFileSync(join(noTruth, 'ILSVRC2012_validation_ground_truth.txt'), '1\n');
    await fails(
      `ilsvrc:${noTruth}`,
      /Expected meta.mat \(or synsets.txt: the synset ids in meta.mat's ILSVRC2012_ID order, one per line\) beside .*ground_truth.txt/,
    );
    // A truncated per-synset tar (an interrupted download).
    const cut = join(root, 'cut');
    execFileSync('cp', ['-r', L.tars, cut]);
    const victim = join(cut, 'train', 'n01443537.tar');
    truncateSync(victim, 512 + 300);
    await fails(
      `ilsvrc:${cut}`,
      /Expected \d+ bytes of n01443537_100.JPEG at byte 512 of .*n01443537.tar but found the end of the archive \(truncated\?\)/,
    );
    writeFileSync(victim, Buffer.alloc(2048, 7));
    await fails(
      `ilsvrc:${cut}`,
      /Expected a tar header \(ustar, GNU or pax\) at byte 0 of .*n01443537.tar but found bytes whose checksum does not match/,
    );
    execFileSync('cp', [join(L.tars, 'train', 'n01443537.tar'), victim]);
    // A validation image the ground truth does not cover.
    writeFileSync(
      join(cut, 'LOC_val_solution.csv'),
      readFileSync(join(L.tars, 'LOC_val_solution.csv'), 'utf8').split('\n').slice(0, 3).join('\n'),
    );
    await fails(
      `ilsvrc:${cut}`,
      /Expected a ground-truth label for ILSVRC2012_val_00000003.JPEG in .*LOC_val_solution.csv but it has none/,
    );
  });
});

describe('contradictions in the data are refused, naming the file and both values', () => {
  const copy = (from: string, name: string): string => {
    const to = join(root, name);
    execFileSync('cp', ['-r', from, to]);
    return to;
  };
  const short = (data: string, out: string): string[] => [
    ...['train', 'vgg-a', '--data', `ilsvrc:${data}`, '--width', '0.0625', '--input-size', '32', '--init', 'kaiming'],
    ...['--batch-size', '4', '--threads', '1', '--max-steps', '1', '--out', join(root, out)],
  ];

  test('evaluate: an image labelled twice in LOC_val_solution.csv, or differently by the solution and the devkit; the same label twice is taken once', async () => {
    const r = await ilsvrc(short(L.tars, 'model'));
    assert.equal(r.code, 0, r.stderr);
    const model = join(root, 'model', 'last.safetensors');
    const evaluate = (dir: string) => ilsvrc(['evaluate', model, '--data', `ilsvrc:${dir}`, '--threads', '1']);

    const twice = copy(L.tars, 'val-twice');
    const csv = join(twice, 'LOC_val_solution.csv');
    writeFileSync(csv, readFileSync(csv, 'utf8') + `ILSVRC2012_val_00000002,${WNIDS[2]} 1 2 3 4\n`);
    assertUsageError(
      await evaluate(twice),
      `Expected one label per image in ${csv} but ILSVRC2012_val_00000002 is "${WNIDS[1]}" on line 3 and "${WNIDS[2]}" on line 8`,
    );
    writeFileSync(csv, readFileSync(join(L.tars, 'LOC_val_solution.csv'), 'utf8') + `ILSVRC2012_val_00000002,${WNIDS[1]} 1 2 3 4\n`);
    const same = await evaluate(twice);
    assert.equal(same.code, 0, same.stderr);

    // The devkit beside Kaggle's file, disagreeing on image 4.
    const both = copy(L.tars, 'val-both');
    const gt = LABELS.map((l, k) => String(ID_ORDER.indexOf(WNIDS[k === 3 ? 2 : l]!) + 1)).join('\n') + '\n';
    writeFileSync(join(both, 'ILSVRC2012_validation_ground_truth.txt'), gt);
    writeFileSync(join(both, 'synsets.txt'), ID_ORDER.join('\n') + '\n');
    assertUsageError(
      await evaluate(both),
      `Expected ${join(both, 'LOC_val_solution.csv')} and ${join(both, 'ILSVRC2012_validation_ground_truth.txt')} to agree but they label ILSVRC2012_val_00000004 ${WNIDS[0]} and ${WNIDS[2]}`,
    );

    // A synset twice in the devkit's id order: two ids, one synset.
    const order = copy(L.folders, 'order-twice');
    writeFileSync(join(order, 'ILSVRC2012_devkit_t12', 'data', 'synsets.txt'), [ID_ORDER[0], ID_ORDER[1], ID_ORDER[0]].join('\n') + '\n');
    assertUsageError(
      await evaluate(order),
      /Expected each synset once in .*synsets\.txt \(one per ILSVRC2012_ID\) but n01484850 is ILSVRC2012_ID 1 and 3$/,
    );
  });

  test('train: an empty or repeated synset tar inside ILSVRC2012_img_train.tar, a synset named twice, an image twice in a tar', async () => {
    const outer = copy(L.outer, 'outer-empty');
    const inner = (w: string) => ({ name: `${w}.tar`, body: readFileSync(join(L.tars, 'train', `${w}.tar`)) });
    const train = join(outer, 'ILSVRC2012_img_train.tar');
    writeTar(train, [inner(WNIDS[0]), { name: `${WNIDS[1]}.tar`, body: Buffer.alloc(1024) }, inner(WNIDS[2])]);
    assertUsageError(
      await ilsvrc(short(outer, 'outer-empty-run')),
      `Expected images of synset ${WNIDS[1]} in ${train} but its member ${WNIDS[1]}.tar holds none`,
    );
    writeTar(train, [inner(WNIDS[0]), inner(WNIDS[1]), inner(WNIDS[2]), inner(WNIDS[1])]);
    assertUsageError(
      await ilsvrc(short(outer, 'outer-twice-run')),
      new RegExp(
        `^ilsvrc: Expected each synset's tar once inside ${train} but ${WNIDS[1]}.tar is there twice \\(the second at byte \\d+\\)$`,
      ),
    );

    const words = copy(L.folders, 'words-twice');
    const file = join(words, 'synset_words.txt');
    writeFileSync(file, readFileSync(file, 'utf8') + `${WNIDS[0]} goldfish\n`);
    assertUsageError(
      await ilsvrc(short(words, 'words-twice-run')),
      `Expected one name per synset in ${file} but ${WNIDS[0]} is "tench, Tinca tinca" on line 1 and "goldfish" on line 4`,
    );

    const val = copy(L.folders, 'val-image-twice');
    writeFileSync(join(val, 'val', 'ILSVRC2012_val_00000002.png'), readFileSync(join(val, 'val', 'ILSVRC2012_val_00000002.JPEG')));
    assertUsageError(
      await ilsvrc(short(val, 'val-image-twice-run')),
      `Expected each validation image once in ${join(val, 'val')} but ILSVRC2012_val_00000002 is there twice (ILSVRC2012_val_00000002.JPEG and ILSVRC2012_val_00000002.png)`,
    );

    const dup = copy(L.tars, 'member-twice');
    const synset = join(dup, 'train', `${WNIDS[2]}.tar`);
    execFileSync('tar', ['-rf', synset, '-C', join(L.folders, 'train', WNIDS[2]), `${WNIDS[2]}_100.JPEG`]);
    assertUsageError(
      await ilsvrc(short(dup, 'member-twice-run')),
      new RegExp(`Expected each image once in ${synset} but ${WNIDS[2]}_100.JPEG is there twice \\(at bytes 512 and \\d+\\)$`),
    );
  });
});

describe('tar reader', () => {
  test('finds members of GNU, pax and ustar archives (long names too) and reads them in place', () => {
    const src = join(root, 'tarsrc');
    const long = `${'d'.repeat(60)}/${'e'.repeat(70)}`;
    mkdirSync(join(src, long), { recursive: true });
    const files: [string, Buffer][] = [
      ['a.txt', Buffer.from('hello')],
      [`${long}/${'f'.repeat(90)}.bin`, Buffer.from(Array.from({ length: 1500 }, (_, i) => i % 251))],
      ['empty', Buffer.alloc(0)],
    ];
    for (const [n, b] of files) writeFileSync(join(src, n), b);
    for (const format of ['gnu', 'pax', 'ustar']) {
      const file = join(root, `t-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', file, '-C', src, ...files.map(([n]) => n)]);
      const idx = indexTar(file);
      assert.deepEqual(
        idx.map((e) => e.name),
        files.map(([n]) => n),
        format,
      );
      for (const [k, [, bytes]] of files.entries()) {
        const e = idx[k]!;
        assert.equal(e.size, bytes.length);
        assert.ok(readMember(file, e.offset, e.size).equals(bytes), `${format}: ${e.name}`);
      }
    }
    assert.equal(
      new FileDataset(['x.tar'], Int32Array.of(0), { names: ['m'], offsets: Float64Array.of(0), sizes: Float64Array.of(1) }).name(0),
      'x.tar:m',
    );
  });
});
