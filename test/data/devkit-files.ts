/**
 * The ILSVRC-2012 devkit's files for tests: `meta.mat` written by SciPy's `savemat` in the devkit's
 * structure (1 000 classes in a shuffled ILSVRC2012_ID order, then 860 synsets above them: 1 860
 * rows with the real file's eight fields), its ground truth, the `.tar.gz` as downloaded, and a
 * MAT-file writer of raw elements for files SciPy would never write (hostile ones).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { imagenet1k } from '../../src/data/synsets.js';

const PY = '/usr/bin/python3';
/** False when SciPy is there, else why the tests that need it are skipped. */
export const noScipy: string | false =
  spawnSync(PY, ['-c', 'import scipy.io'], { stdio: 'ignore' }).status === 0 ? false : 'SciPy (Debian python3-scipy) not installed';

export interface MetaRow {
  id: number;
  wnid: string;
  words: string;
  children: number[];
}

/** ILSVRC2012_ID order: the sorted classes shuffled by a fixed permutation (id 1 is not index 0, as in the real file). */
export function devkitRows(): MetaRow[] {
  const { wnids, words } = imagenet1k();
  const order = wnids.map((_, k) => (k * 389 + 281) % 1000); // 389 is prime to 1000: a permutation
  const rows: MetaRow[] = order.map((k, i) => ({ id: i + 1, wnid: wnids[k]!, words: words.get(wnids[k]!)!, children: [] }));
  for (let j = 0; j < 860; j++) {
    const children = [1 + ((j * 7) % 1000), 1 + ((j * 7 + 3) % 1000)];
    rows.push({ id: 1001 + j, wnid: `n${String(9_000_000 + j).padStart(8, '0')}`, words: `group ${j}`, children });
  }
  return rows;
}

const WRITE = `
import json, sys
import numpy as np, scipy.io as sio
spec = json.load(sys.stdin)
fields = ['ILSVRC2012_ID', 'WNID', 'words', 'gloss', 'num_children', 'children', 'wordnet_height', 'num_train_images']
rows = spec['rows']
a = np.zeros((len(rows), 1), dtype=[(f, 'O') for f in fields])
for i, r in enumerate(rows):
    kids = r['children']
    a[i, 0] = (np.array([[r['id']]], dtype=np.float64), r['wnid'], r['words'], 'gloss of ' + r['wnid'],
               np.array([[len(kids)]], dtype=np.float64),
               np.array([kids], dtype=np.float64) if kids else np.zeros((0, 0)),
               np.array([[0 if not kids else 1]], dtype=np.float64), np.array([[1300 if not kids else 0]], dtype=np.float64))
sio.savemat(spec['out'], {'synsets': a}, do_compression=spec['compress'])
`;

/** meta.mat as SciPy writes it (compressed, as MATLAB's default save is). */
export function writeMetaMat(file: string, rows: readonly MetaRow[], compress = true): void {
  mkdirSync(dirname(file), { recursive: true });
  execFileSync(PY, ['-c', WRITE], { input: JSON.stringify({ rows, out: file, compress }) });
}

/** The ground truth's lines: the ILSVRC2012_ID of each validation image's synset. */
export function groundTruth(rows: readonly MetaRow[], synsets: readonly string[]): string {
  const id = new Map(rows.map((r) => [r.wnid, r.id]));
  return synsets.map((w) => String(id.get(w))).join('\n') + '\n';
}

/** ILSVRC2012_devkit_t12.tar.gz in `dir`, holding data/meta.mat and the ground truth, as downloaded (made by tar -z). */
export function writeDevkitTar(dir: string, rows: readonly MetaRow[], truth: string): string {
  const src = join(dir, 'devkit-src');
  const data = join(src, 'ILSVRC2012_devkit_t12', 'data');
  writeMetaMat(join(data, 'meta.mat'), rows);
  writeFileSync(join(data, 'ILSVRC2012_validation_ground_truth.txt'), truth);
  writeFileSync(join(src, 'ILSVRC2012_devkit_t12', 'readme.txt'), 'ILSVRC2012 development kit\n');
  const out = join(dir, 'ILSVRC2012_devkit_t12.tar.gz');
  execFileSync('tar', ['-czf', out, '-C', src, 'ILSVRC2012_devkit_t12']);
  return out;
}

/** A data element: little-endian tag, data, padding to 8 bytes. */
export function matElement(type: number, data: Uint8Array, pad = true): Buffer {
  const tag = Buffer.alloc(8);
  tag.writeUInt32LE(type, 0);
  tag.writeUInt32LE(data.length, 4);
  const padding = pad ? (8 - (data.length % 8)) % 8 : 0;
  return Buffer.concat([tag, data, Buffer.alloc(padding)]);
}

const int32s = (xs: number[]) => Buffer.from(Int32Array.from(xs).buffer);

/** A struct array's miMATRIX element with the given dims and field names and `body` after them (its fields' arrays, or a lie). */
export function matStruct(name: string, dims: number[], fields: string[], body: Uint8Array): Buffer {
  const flags = Buffer.from(Uint32Array.from([2, 0]).buffer);
  const names = Buffer.alloc(32 * fields.length);
  fields.forEach((f, k) => names.write(f, 32 * k, 'latin1'));
  return matElement(
    14,
    Buffer.concat([
      matElement(6, flags),
      matElement(5, int32s(dims)),
      matElement(1, Buffer.from(name, 'latin1')),
      matElement(5, int32s([32])),
      matElement(1, names),
      body,
    ]),
  );
}

/** A MAT-file of the given top-level elements, after the 128-byte header. */
export function matFile(...elements: Uint8Array[]): Buffer {
  const head = Buffer.alloc(128, 0x20);
  head.write('MATLAB 5.0 MAT-file, written by a test', 0, 'latin1');
  head.writeUInt16LE(0x0100, 124);
  head.write('IM', 126, 'latin1');
  return Buffer.concat([head, ...elements]);
}
