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
import { Rng } from '../util/rng.js';
import { expected } from '../util/errors.js';

export const SYNTHETIC_CLASSES = [
  'circle',
  'square',
  'triangle',
  'ring',
  'cross',
  'stripes',
  'checker',
  'dots',
  'diamond',
  'crescent',
] as const;

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
  const nVal = Math.max(1, Math.round(o.perClass * o.valFraction));
  for (const [c, name] of names.entries()) {
    for (const split of ['train', 'val']) await fs.mkdir(path.join(tmp, split, name), { recursive: true });
    const jobs: Promise<unknown>[] = [];
    for (let k = 0; k < o.perClass; k++) {
      const rgb = renderShape(c, o.size, new Rng(o.seed).fork(`${name}:${k}`));
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

function randomColour(r: Rng): [number, number, number] {
  return [r.int(256), r.int(256), r.int(256)];
}

function luma(c: readonly number[]): number {
  return 0.299 * (c[0] ?? 0) + 0.587 * (c[1] ?? 0) + 0.114 * (c[2] ?? 0);
}

/** Signed distance (pixels; negative inside) of class `c` at local coordinates (x, y), object radius r. */
type Shape = (x: number, y: number) => { d: number; alt: boolean };

function shapeOf(c: number, r: number, rng: Rng): Shape {
  const box = (x: number, y: number, a: number, b: number): number => Math.max(Math.abs(x) - a, Math.abs(y) - b);
  const disk = (x: number, y: number): number => Math.hypot(x, y) - r;
  const period = r * rng.uniform(0.35, 0.55);
  const phi = rng.uniform(0, Math.PI);
  const dots = Array.from({ length: 5 + rng.int(4) }, () => {
    const a = rng.uniform(0, 2 * Math.PI);
    const m = rng.uniform(0, 0.75) * r;
    return [m * Math.cos(a), m * Math.sin(a)] as const;
  });
  switch (SYNTHETIC_CLASSES[c]) {
    case 'circle':
      return (x, y) => ({ d: disk(x, y), alt: false });
    case 'square':
      return (x, y) => ({ d: box(x, y, r * 0.8, r * 0.8), alt: false });
    case 'triangle':
      return (x, y) => {
        let d = -Infinity;
        for (let k = 0; k < 3; k++) {
          const a = Math.PI / 2 + (k * 2 * Math.PI) / 3;
          d = Math.max(d, x * Math.cos(a) + y * Math.sin(a) - r * 0.5);
        }
        return { d, alt: false };
      };
    case 'ring':
      return (x, y) => ({ d: Math.abs(Math.hypot(x, y) - r * 0.75) - r * 0.2, alt: false });
    case 'cross':
      return (x, y) => ({ d: Math.min(box(x, y, r, r * 0.28), box(x, y, r * 0.28, r)), alt: false });
    case 'stripes':
      return (x, y) => ({ d: disk(x, y), alt: Math.sin(((x * Math.cos(phi) + y * Math.sin(phi)) * 2 * Math.PI) / period) > 0 });
    case 'checker':
      return (x, y) => ({ d: box(x, y, r * 0.85, r * 0.85), alt: (Math.floor(x / period + 100) + Math.floor(y / period + 100)) % 2 === 0 });
    case 'dots':
      return (x, y) => ({ d: Math.min(...dots.map(([dx, dy]) => Math.hypot(x - dx, y - dy) - r * 0.18)), alt: false });
    case 'diamond':
      return (x, y) => ({ d: (Math.abs(x) + Math.abs(y)) / Math.SQRT2 - r * 0.7, alt: false });
    case 'crescent':
      return (x, y) => ({ d: Math.max(disk(x, y), -(Math.hypot(x - r * 0.5, y) - r * 0.8)), alt: false });
    default:
      throw new Error(`no synthetic shape for class ${c}`);
  }
}

/** One image, RGB HWC uint8. Exposed for tests. */
export function renderShape(c: number, size: number, rng: Rng): Uint8Array {
  const bg = randomColour(rng);
  let fg = randomColour(rng);
  while (Math.abs(luma(fg) - luma(bg)) < 60) fg = randomColour(rng);
  let fg2 = randomColour(rng);
  while (Math.abs(luma(fg2) - luma(fg)) < 60) fg2 = randomColour(rng);
  const r = size * rng.uniform(0.2, 0.34);
  const cx = size / 2 + rng.uniform(-1, 1) * (size / 2 - r - 1);
  const cy = size / 2 + rng.uniform(-1, 1) * (size / 2 - r - 1);
  // Squares and diamonds only rotate ±20°, so the two stay distinct classes.
  const theta =
    SYNTHETIC_CLASSES[c] === 'square' || SYNTHETIC_CLASSES[c] === 'diamond' ? rng.uniform(-0.35, 0.35) : rng.uniform(0, 2 * Math.PI);
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const shape = shapeOf(c, r, rng);
  const noise = rng.uniform(4, 24);
  const gx = rng.uniform(-40, 40) / size;
  const gy = rng.uniform(-40, 40) / size;
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const { d, alt } = shape(dx * cos + dy * sin, -dx * sin + dy * cos);
      const cover = Math.min(1, Math.max(0, 0.5 - d)); // one-pixel anti-aliased edge
      const f = alt ? fg2 : fg;
      const grad = gx * (x - size / 2) + gy * (y - size / 2);
      for (let k = 0; k < 3; k++) {
        const b = (bg[k] ?? 0) + grad;
        const v = b + ((f[k] ?? 0) - b) * cover + rng.normal(0, noise);
        out[(y * size + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}
