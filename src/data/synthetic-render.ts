/**
 * The synthetic shapes as pixels (src/data/synthetic.ts writes them as an ImageFolder; the page in
 * src/web renders them straight to tensors): image k of class c is the same pixels either way.
 */
import { Rng } from '../util/rng.js';

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

/** Image k of class c (RGB HWC uint8) of the set drawn from `seed`; k < syntheticValCount are the val/ images. */
export function syntheticImage(seed: number, c: number, k: number, size: number): Uint8Array {
  return renderShape(c, size, new Rng(seed).fork(`${SYNTHETIC_CLASSES[c]}:${k}`));
}

/** Images of each class that go to val/ (the first ones). */
export function syntheticValCount(perClass: number, valFraction: number): number {
  return Math.max(1, Math.round(perClass * valFraction));
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
