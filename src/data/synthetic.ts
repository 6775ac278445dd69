/**
 * The built-in dataset: coloured shapes and textures rendered by ilsvrc itself, deterministic
 * from a seed, written as JPEG and PNG into an ImageFolder (train/ and val/). Position, size,
 * rotation, colours and background noise are random per image and the colours are independent
 * of the class, so mean colour says nothing: a model has to see shape and texture.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { expected } from '../util/errors.js';
import { SYNTHETIC_CLASSES, syntheticImage, syntheticValCount } from './synthetic-render.js';

export { renderShape, SYNTHETIC_CLASSES } from './synthetic-render.js';

export interface SyntheticOptions {
  /** Output folder; default: a cache folder under the OS temp dir named by the other options. */
  dir?: string;
  /** Number of classes, 2–10 (default 8). */
  classes?: number;
  /** Images per class, train and val together (default 300). */
  perClass?: number;
  /** Side in pixels (default 64). */
  size?: number;
  seed?: number;
  /** Share of each class in val/ (default 0.2). */
  valFraction?: number;
}

export interface SyntheticResult {
  dir: string;
  classes: string[];
  /** False when a complete folder with the same options was reused. */
  generated: boolean;
}

const VERSION = 1;

function resolve(o: SyntheticOptions): Required<SyntheticOptions> {
  const classes = o.classes ?? 8;
  const perClass = o.perClass ?? 300;
  const size = o.size ?? 64;
  const seed = o.seed ?? 0;
  const valFraction = o.valFraction ?? 0.2;
  if (!Number.isInteger(classes) || classes < 2 || classes > SYNTHETIC_CLASSES.length)
    throw expected(`an integer in [2, ${SYNTHETIC_CLASSES.length}]`, 'synthetic classes', classes);
  if (!Number.isInteger(perClass) || perClass < 2) throw expected('an integer >= 2', 'synthetic perClass', perClass);
  if (!Number.isInteger(size) || size < 8 || size > 1024) throw expected('an integer in [8, 1024]', 'synthetic size', size);
  if (!Number.isInteger(seed)) throw expected('an integer', 'synthetic seed', seed);
  if (!(valFraction > 0 && valFraction < 1)) throw expected('a number in (0, 1)', 'synthetic valFraction', valFraction);
  const dir = o.dir ?? path.join(os.tmpdir(), `ilsvrc-synthetic-v${VERSION}-c${classes}-n${perClass}-s${size}-seed${seed}-v${valFraction}`);
  return { dir, classes, perClass, size, seed, valFraction };
}

let partials = 0;

/** Renders (or reuses) the synthetic ImageFolder. */
export async function generateSynthetic(opts: SyntheticOptions = {}): Promise<SyntheticResult> {
  const o = resolve(opts);
  const names = SYNTHETIC_CLASSES.slice(0, o.classes).map(String);
  const marker = JSON.stringify({
    version: VERSION,
    classes: o.classes,
    perClass: o.perClass,
    size: o.size,
    seed: o.seed,
    valFraction: o.valFraction,
  });
  const complete = async () => (await fs.readFile(path.join(o.dir, '.complete'), 'utf8').catch(() => '')) === marker;
  if (await complete()) return { dir: o.dir, classes: names, generated: false };
  // Render into a private folder and rename, so concurrent runs never see half a dataset.
  const tmp = `${o.dir}.partial-${process.pid}-${Date.now()}-${++partials}`;
  const nVal = syntheticValCount(o.perClass, o.valFraction);
  for (const [c, name] of names.entries()) {
    for (const split of ['train', 'val']) await fs.mkdir(path.join(tmp, split, name), { recursive: true });
    const jobs: Promise<unknown>[] = [];
    for (let k = 0; k < o.perClass; k++) {
      const rgb = syntheticImage(o.seed, c, k, o.size);
      const split = k < nVal ? 'val' : 'train';
      const img = sharp(rgb, { raw: { width: o.size, height: o.size, channels: 3 } });
      const file = path.join(tmp, split, name, `${String(k).padStart(5, '0')}.${k % 2 === 0 ? 'jpg' : 'png'}`);
      jobs.push((k % 2 === 0 ? img.jpeg({ quality: 92 }) : img.png()).toFile(file));
      if (jobs.length >= 16) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
  }
  await fs.writeFile(path.join(tmp, '.complete'), marker);
  await fs.mkdir(path.dirname(o.dir), { recursive: true });
  // A folder renames only onto a missing (or empty) one. A complete folder another run finished
  // first is kept (that run may be reading it); only an incomplete or older one is moved away.
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.rename(tmp, o.dir);
      break;
    } catch (e) {
      if (await complete()) {
        await fs.rm(tmp, { recursive: true, force: true });
        break;
      }
      if (attempt > 0) throw e;
      const stale = `${o.dir}.stale-${process.pid}-${Date.now()}`;
      await fs.rename(o.dir, stale).catch(() => undefined);
      await fs.rm(stale, { recursive: true, force: true });
    }
  }
  return { dir: o.dir, classes: names, generated: true };
}
