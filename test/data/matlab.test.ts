/**
 * The MAT-file reader against files SciPy's savemat writes (every numeric type, chars, cells,
 * structs, compressed or not, and the devkit's meta.mat), and against files written to lie.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { after, test } from 'node:test';
import { parseMetaMat } from '../../src/data/devkit.js';
import { readMat, type MatValue } from '../../src/data/matlab.js';
import { imagenet1k } from '../../src/data/synsets.js';
import { devkitRows, matElement, matFile, matStruct, noScipy, writeMetaMat } from './devkit-files.js';

const root = mkdtempSync(join(tmpdir(), 'ilsvrc-matlab-'));
after(() => rmSync(root, { recursive: true, force: true }));

const KINDS = `
import sys, numpy as np, scipy.io as sio
s = np.zeros((2, 1), dtype=[('n', 'O'), ('s', 'O'), ('c', 'O')])
s[0, 0] = (np.array([[1, -2, 3]], dtype=np.int8), 'héllo', np.array([[np.uint16(7), 'x']], dtype=object))
s[1, 0] = (np.array([[1.5], [2.5]]), '', np.zeros((0, 0)))
v = {'s': s, 'u16': np.array([[65535, 1]], dtype=np.uint16), 'i64': np.array([[-5]], dtype=np.int64),
     'f32': np.array([[0.25]], dtype=np.float32), 'u32': np.array([[4000000000]], dtype=np.uint32),
     'm': np.arange(6, dtype=np.float64).reshape(2, 3), 'b': np.array([[True, False]])}
sio.savemat(sys.argv[1], v, do_compression=sys.argv[2] == '1')
`;

const num = (v: MatValue | undefined) => (v?.type === 'numeric' ? [v.dims, Array.from(v.data)] : v);

test('readMat reads what SciPy writes: numbers of every width, chars, cells and structs, compressed or not', { skip: noScipy }, () => {
  for (const compress of ['0', '1']) {
    const file = join(root, `kinds-${compress}.mat`);
    execFileSync('/usr/bin/python3', ['-c', KINDS, file, compress]);
    const m = readMat(readFileSync(file), file, 1 << 20);
    assert.deepEqual(num(m.get('u16')), [
      [1, 2],
      [65535, 1],
    ]);
    assert.deepEqual(num(m.get('i64')), [[1, 1], [-5]]);
    assert.deepEqual(num(m.get('f32')), [[1, 1], [0.25]]);
    assert.deepEqual(num(m.get('u32')), [[1, 1], [4000000000]]);
    assert.deepEqual(
      num(m.get('m')),
      [
        [2, 3],
        [0, 3, 1, 4, 2, 5],
      ],
      'column-major, as MATLAB keeps it',
    );
    assert.deepEqual(num(m.get('b')), [
      [1, 2],
      [1, 0],
    ]);
    const s = m.get('s');
    assert.ok(s?.type === 'struct');
    assert.deepEqual(s.dims, [2, 1]);
    assert.deepEqual(s.fields, ['n', 's', 'c']);
    assert.deepEqual(num(s.elements[0]?.get('n')), [
      [1, 3],
      [1, -2, 3],
    ]);
    assert.deepEqual(s.elements[0]?.get('s'), { type: 'char', dims: [1, 5], text: 'héllo' });
    const c = s.elements[0]?.get('c');
    assert.ok(c?.type === 'cell');
    assert.deepEqual(num(c.cells[0]), [[1, 1], [7]]);
    assert.equal(c.cells[1]?.type === 'char' && c.cells[1].text, 'x');
    assert.deepEqual(num(s.elements[1]?.get('n')), [
      [2, 1],
      [1.5, 2.5],
    ]);
  }
});

test("the devkit's meta.mat: 1 860 rows, the 1 000 classes by ILSVRC2012_ID with their words", { skip: noScipy }, () => {
  const rows = devkitRows();
  assert.equal(rows.length, 1860);
  for (const compress of [true, false]) {
    const file = join(root, `meta-${compress}.mat`);
    writeMetaMat(file, rows, compress);
    const meta = parseMetaMat(readFileSync(file), file);
    assert.deepEqual(
      meta.ids,
      rows.slice(0, 1000).map((r) => r.wnid),
    );
    assert.equal(meta.words.get('n02123045'), 'tabby, tabby cat');
    assert.deepEqual([...meta.ids].sort(), imagenet1k().wnids);
  }
});

test('a MAT-file that lies is refused in one line naming it and the byte, before allocating what it claims', () => {
  const f = 'hostile.mat';
  const ok = matStruct('synsets', [1, 1], ['WNID'], matElement(14, Buffer.alloc(0)));
  assert.ok(readMat(matFile(ok), f, 1 << 20).get('synsets'));
  const cases: [Buffer, RegExp][] = [
    [Buffer.from('not a mat file at all'), /Expected a MATLAB 5 MAT-file .* in hostile.mat but it starts "not a mat file at al"/],
    [Buffer.from('MATLAB 7.3 MAT-file, Platform: GLNXA64'), /MATLAB 7.3 \(HDF5\) file; save it with -v7/],
    [
      matFile(ok).subarray(0, 150),
      /Expected a data element within the \d+ bytes left at byte 128 of hostile.mat but found one of \d+ bytes/,
    ],
    [
      matFile(matStruct('synsets', [1_000_000_000, 1], ['ILSVRC2012_ID', 'WNID'], Buffer.alloc(64))),
      /Expected 1000000000 × 2 fields of \[1000000000, 1\] within 64 bytes at byte \d+ of hostile.mat but found too few bytes/,
    ],
    [
      matFile(matElement(15, deflateSync(Buffer.alloc(4 << 20)), false)),
      /Expected the MAT-file hostile.mat to inflate to at most 1048576 bytes but it inflates to more/,
    ],
    [matFile(matElement(15, Buffer.from('not zlib'), false)), /Expected zlib data in hostile.mat but it does not inflate/],
  ];
  for (const [bytes, want] of cases) assert.throws(() => readMat(bytes, f, 1 << 20), want);
  let deep = matElement(14, Buffer.alloc(0));
  for (let k = 0; k < 40; k++) deep = matStruct('', [1, 1], ['x'], deep);
  assert.throws(() => readMat(matFile(deep), f, 1 << 20), /arrays nested at most 32 deep/);
  assert.throws(
    () => parseMetaMat(matFile(ok), f),
    /Expected the struct array synsets with fields ILSVRC2012_ID, WNID, words in hostile.mat \(the devkit's meta.mat\) but found fields WNID/,
  );
});
