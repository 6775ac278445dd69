/**
 * The ILSVRC-2012 devkit from a hostile hand: a meta.mat that is cut short, claims a billion rows
 * in a few bytes, or inflates without end, and a devkit .tar.gz that is no gzip. Each is refused
 * in one line naming the file, before anything is allocated for what it claims.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { channelMeanModel } from '../../test/cli/plain-onnx.js';
import { matElement, matFile, matStruct } from '../../test/data/devkit-files.js';
import { jpeg } from '../../test/data/ilsvrc-layout.js';
import { assertRefused, type Case, cli } from './harness.js';

const FIELDS = ['ILSVRC2012_ID', 'WNID', 'words'];

/** A validation folder of one image whose devkit folder holds `meta` as meta.mat (or the .tar.gz holds `tar`); evaluate on it. */
async function evaluateWith(dir: string, files: { meta?: Uint8Array; tar?: Uint8Array }) {
  mkdirSync(join(dir, 'val'), { recursive: true });
  writeFileSync(join(dir, 'val', 'ILSVRC2012_val_00000001.JPEG'), await jpeg(0, 1));
  if (files.meta) {
    const data = join(dir, 'ILSVRC2012_devkit_t12', 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'meta.mat'), files.meta);
    writeFileSync(join(data, 'ILSVRC2012_validation_ground_truth.txt'), '1\n');
  }
  if (files.tar) writeFileSync(join(dir, 'ILSVRC2012_devkit_t12.tar.gz'), files.tar);
  const model = join(dir, 'mean.onnx');
  writeFileSync(model, channelMeanModel(12));
  return cli(['evaluate', model, '--data', `ilsvrc:${dir}`, '--out', join(dir, 'out')]);
}

export const DEVKIT: Case[] = [
  {
    name: 'meta-mat-truncated',
    what: "the devkit's meta.mat cut short",
    async run(ctx) {
      const whole = matFile(matStruct('synsets', [1, 1], FIELDS, Buffer.alloc(3 * 8)));
      const r = await evaluateWith(ctx.dir, { meta: whole.subarray(0, whole.length - 40) });
      return assertRefused(r, /Expected a data element within the \d+ bytes left at byte 128 of .*meta\.mat but found one of \d+ bytes/);
    },
  },
  {
    name: 'meta-mat-billion-rows',
    what: 'a meta.mat whose synsets claim 10⁹ rows in 64 bytes',
    async run(ctx) {
      const meta = matFile(matStruct('synsets', [1_000_000_000, 1], FIELDS, Buffer.alloc(64)));
      const r = await evaluateWith(ctx.dir, { meta });
      return assertRefused(r, /Expected 1000000000 × 3 fields of \[1000000000, 1\] within 64 bytes at byte \d+ of .*meta\.mat/);
    },
  },
  {
    name: 'meta-mat-inflation-bomb',
    what: 'a meta.mat whose compressed variable inflates past 64 MiB',
    async run(ctx) {
      const meta = matFile(matElement(15, deflateSync(Buffer.alloc(65 << 20)), false));
      const r = await evaluateWith(ctx.dir, { meta });
      return assertRefused(r, /Expected the MAT-file .*meta\.mat to inflate to at most 67108864 bytes but it inflates to more/);
    },
  },
  {
    name: 'devkit-tar-not-gzip',
    what: 'an ILSVRC2012_devkit_t12.tar.gz that is no gzip',
    async run(ctx) {
      const r = await evaluateWith(ctx.dir, { tar: Buffer.from('<html>404 Not Found</html>\n') });
      return assertRefused(r, /Expected gzip data in .*ILSVRC2012_devkit_t12\.tar\.gz but it does not inflate/);
    },
  },
];
