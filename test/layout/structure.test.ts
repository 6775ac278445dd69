/**
 * The structure of src/ that a newcomer relies on, measured (scripts/structure.ts; `npm run lint`
 * prints the same findings): no import cycle, no function over MAX_FUNCTION_LINES lines in
 * src/train and src/runtime, no export that nothing imports.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { importCycles, longFunctions, MAX_FUNCTION_LINES, unusedExports } from '../../scripts/structure.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

test('no import cycle in src/, within a folder or across folders (type imports included)', () => {
  assert.deepEqual(importCycles(`${root}/src`), []);
});

test(`no function over ${MAX_FUNCTION_LINES} lines in src/train and src/runtime`, () => {
  assert.deepEqual(longFunctions(`${root}/src`), []);
});

test('no export that no module of src/, scripts/ or test/ imports', () => {
  assert.deepEqual(unusedExports(root), []);
});

test('the checks find a cycle, a long function and an unused export written for them', () => {
  const probe = mkdtempSync(join(tmpdir(), 'ilsvrc-structure-'));
  try {
    for (const d of ['src/train', 'src/runtime', 'scripts', 'test']) mkdirSync(join(probe, d), { recursive: true });
    const body = Array.from({ length: MAX_FUNCTION_LINES }, (_, i) => `  const v${i} = ${i};`).join('\n');
    writeFileSync(join(probe, 'src/train/a.ts'), `import { b } from './b.js';\nexport function a(): number {\n${body}\n  return b();\n}\n`);
    writeFileSync(
      join(probe, 'src/train/b.ts'),
      `import type { a } from './a.js';\nexport function b(): number {\n  return 1;\n}\nexport type A = typeof a;\n`,
    );
    assert.deepEqual(importCycles(join(probe, 'src')), [['train/a.ts', 'train/b.ts']]);
    assert.deepEqual(
      longFunctions(join(probe, 'src')).map((f) => [f.file, f.name]),
      [['train/a.ts', 'a']],
    );
    assert.deepEqual(
      unusedExports(probe, []).map((u) => [u.file, u.name]),
      [['src/train/b.ts', 'A']],
    );
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
});
