/**
 * scripts/lint: the structure rules of src/ (scripts/structure.ts) — no import cycle, no function
 * over MAX_FUNCTION_LINES lines in src/train and src/runtime, no export that nothing imports —
 * printed one finding a line, then a JSON line of the counts. Exit 1 on any finding. `npm run lint`
 * runs it after Prettier's check; `npm test` runs that lint after the build (whose tsconfig refuses
 * unused locals and parameters).
 */
import { fileURLToPath } from 'node:url';
import { importCycles, longFunctions, MAX_FUNCTION_LINES, unusedExports } from './structure.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cycles = importCycles(`${root}/src`);
const long = longFunctions(`${root}/src`);
const unused = unusedExports(root);
for (const c of cycles) process.stdout.write(`import cycle: ${c.join(' → ')}\n`);
for (const f of long) process.stdout.write(`src/${f.file}:${f.line}: ${f.name} is ${f.lines} lines (at most ${MAX_FUNCTION_LINES})\n`);
for (const u of unused) process.stdout.write(`${u.file}:${u.line}: ${u.name} is exported but no other module imports it\n`);
process.stdout.write(JSON.stringify({ cycles: cycles.length, long_functions: long.length, unused_exports: unused.length }) + '\n');
process.exitCode = cycles.length + long.length + unused.length > 0 ? 1 : 0;
