/**
 * Files hostile in what they hold (test/cli/hostile-files.ts makes them): NaN and infinite weights
 * offered to import, ONNX external data that leads out of the model's folder or to something that
 * is not a file, files that define one name twice, and folders where a run writes its files. Every
 * one is refused in one line, exit 2, and nothing is written.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_FILE } from '../../src/util/lock.js';
import { importArgs, writeHostileFiles, type HostileFiles } from '../../test/cli/hostile-files.js';
import { TINY } from '../../test/cli/run.js';
import { assertOk, assertRefused, cli, type Case, type Context } from './harness.js';

function files(ctx: Context): HostileFiles {
  mkdirSync(ctx.dir, { recursive: true });
  return writeHostileFiles(ctx.dir);
}

/** `import` of each file is refused with a line matching its patterns, and writes no checkpoint. */
async function refusedImports(ctx: Context, f: HostileFiles, cases: readonly [string, RegExp[]][]): Promise<void> {
  const out = join(f.dir, 'out');
  mkdirSync(out, { recursive: true });
  await Promise.all(
    (ctx.quick ? cases.slice(0, 2) : cases).map(async ([file, patterns], i) => {
      const target = join(out, `${i}.safetensors`);
      assertRefused(await cli(importArgs(file, target)), ...patterns);
      assert.ok(!existsSync(target), `${file}: a checkpoint was written`);
    }),
  );
  assert.deepEqual(readdirSync(out), [], 'nothing written, no temp file left');
}

const esc = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

export const FILES: Case[] = [
  {
    name: 'non-finite-import',
    what: 'NaN/Inf weights in ONNX, Caffe, safetensors',
    async run(ctx) {
      const f = files(ctx);
      assertOk(await cli(importArgs(f.valid.onnx, join(f.dir, 'valid.safetensors'))));
      const kinds = ['onnx', 'caffe', 'stateDict'] as const;
      const patterns = (k: (typeof kinds)[number]) => [
        esc(f.nonFinite[k]),
        esc(`"${f.nonFiniteNames[k]}"`),
        /NaN or Infinity; nothing written/,
      ];
      await refusedImports(
        ctx,
        f,
        kinds.map((k) => [f.nonFinite[k], patterns(k)]),
      );
      return 'valid imported; the rest refused, nothing written';
    },
  },
  {
    name: 'outside-references',
    what: 'ONNX external data: symlink out, FIFO, huge length, NUL, "."',
    async run(ctx) {
      const f = files(ctx);
      assertOk(await cli(importArgs(f.valid.external, join(f.dir, 'valid.safetensors'))));
      const o = f.outside;
      await refusedImports(ctx, f, [
        [o.symlink, [/"link\.bin" leads to .*outside/]],
        [o.fifo, [/"pipe\.bin" names .* not a regular file/]],
        [o.hugeLength, [/asks for bytes 0 to 1000000000000000/]],
        [o.nul, [/holds a NUL byte/]],
        [o.dot, [/location "\." names .* a directory/]],
        [o.climb, [/climbs out/]],
      ]);
      return 'external data beside the model imported; the rest refused';
    },
  },
  {
    name: 'contradictions',
    what: 'a name defined twice, a cyclic graph',
    async run(ctx) {
      const f = files(ctx);
      const c = f.contradictions;
      await refusedImports(ctx, f, [
        [c.dupInitializer, [/"conv2_1\.weight" .* defined twice/]],
        [c.cycle, [/form a cycle: .*Conv/]],
        [c.dupCaffeLayer, [/one layer named "conv1_1"/]],
        [c.dupSafetensorsKey, [/"fc8\.bias" is given twice/]],
      ]);
      const exported = await cli(['export', 'vgg-a', '--checkpoint', c.dupCheckpointField, '-o', join(f.dir, 'x.onnx')]);
      assertRefused(exported, /"epoch" is given twice: 1 and 40/);
      return 'refused, both definitions named';
    },
  },
  {
    name: 'exit-codes',
    what: 'a folder where a run writes a file',
    async run(ctx) {
      const all = ['.last.safetensors.pending', 'best.safetensors', 'metrics.csv', LOCK_FILE, 'last.safetensors'];
      const places = ctx.quick ? all.slice(0, 1) : all;
      for (const place of places) {
        const out = join(ctx.dir, place.replace(/^\./, 'dot-'));
        mkdirSync(join(out, place), { recursive: true });
        const r = await cli([...TINY, '--max-steps', '6', '--checkpoint-every', '3', '--out', out]);
        // A folder named last.safetensors is taken for a run's: the start refuses it, as it would a file.
        assertRefused(r, place === 'last.safetensors' ? /already has last\.safetensors/ : esc(join(out, place)));
      }
      return `${places.length} refused naming the folder`;
    },
  },
];
