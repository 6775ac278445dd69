/**
 * Augmentations as data. A `Transforms` is an immutable list of validated steps (fluent methods
 * return a new one, so presets can be shared); `plan(rng, width, height)` is the pure part that
 * turns one image's size and a seeded stream into concrete views, colour factors and the
 * per-channel scale/bias of normalisation. The pixels are moved elsewhere (sharp, pixels.ts).
 *
 * All geometry composes into one View per output: "resize the source to sw×sh, take this window,
 * maybe mirror it" — so a crop of a resize is computed once, from the source pixels.
 */
import { Rng } from '../util/rng.js';
import { expected, orList, UsageError } from '../util/errors.js';
import type { ColourJitter, Image8, View } from './pixels.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../util/imagenet.js';

/** AlexNet's PCA lighting: eigen-decomposition of ImageNet's RGB covariance (pixels in [0, 1]). */
export const IMAGENET_EIGVAL = [0.2175, 0.0188, 0.0045] as const;
/** Columns are eigenvectors, row-major 3×3. */
export const IMAGENET_EIGVEC = [-0.5675, 0.7192, 0.4009, -0.5808, -0.0045, -0.814, -0.5836, -0.6948, 0.4203] as const;
export { IMAGENET_MEAN, IMAGENET_STD };

export type Step =
  | { op: 'resizeShorter'; min: number; max: number }
  | { op: 'resize'; width: number; height: number }
  | { op: 'randomCrop'; size: number; padding: number }
  | { op: 'centerCrop'; size: number; height?: number }
  | { op: 'randomResizedCrop'; size: number; scale: [number, number]; ratio: [number, number] }
  | { op: 'hflip'; p: number }
  | { op: 'tenCrop'; size: number }
  | { op: 'multiScale'; scales: number[]; size: number; ten: boolean }
  | { op: 'withMirror' }
  | { op: 'googlenetCrops'; scales: number[]; size: number }
  | { op: 'colorJitter'; brightness: number; contrast: number; saturation: number }
  | { op: 'lighting'; alphaStd: number; eigval: number[]; eigvec: number[] }
  | { op: 'normalize'; mean: number[]; std: number[] };

/** Plain data, so a transform can be sent to a worker thread. */
export interface TransformSpec {
  channels: 1 | 3;
  steps: Step[];
}

/** Everything needed to produce one image's output views. */
export interface Plan {
  views: View[];
  jitter: ColourJitter | null;
  /** Lighting offset per channel, in [0, 1] pixel units (0 without lighting). */
  offset: number[];
  /** out = pixel255 * scale + bias: normalisation with the lighting offset folded in. */
  scale: number[];
  bias: number[];
}

/**
 * The test-time views: the name a command's --crop gives each, a word for --help, and whether it
 * evaluates at several scales (--scales; no single batch shape, so `predict` does not offer it).
 */
export const EVAL_VIEWS = {
  center: { crop: 'center', note: '', scaled: false },
  ten: { crop: 'ten', note: 'AlexNet', scaled: false },
  multiscale: { crop: 'multiscale', note: '', scaled: true },
  googlenet: { crop: 'googlenet', note: '144 crops', scaled: true },
  none: { crop: 'full', note: 'whole image resized', scaled: false },
} as const;
export type EvalRecipe = keyof typeof EVAL_VIEWS;
export const EVAL_RECIPES = Object.keys(EVAL_VIEWS) as EvalRecipe[];
/** The --crop names of the views ('full' for the whole image). */
export type CropName = (typeof EVAL_VIEWS)[EvalRecipe]['crop'];

/** The view a --crop name stands for. */
export function viewOfCrop(crop: CropName): EvalRecipe {
  return EVAL_RECIPES.find((v) => EVAL_VIEWS[v].crop === crop)!;
}

/**
 * The training augmentations (--augment), and the validation view that matches each: the papers'
 * crops come from a larger resize, so a center crop; the others see the whole image resized, and a
 * center crop would zoom in by 256/224.
 */
export const TRAIN_PRESETS = {
  alexnet: { view: 'center' },
  vgg: { view: 'center' },
  googlenet: { view: 'center' },
  cifar: { view: 'none' },
  flip: { view: 'none' },
  none: { view: 'none' },
} as const satisfies Readonly<Record<string, { view: EvalRecipe }>>;
export type TrainRecipe = keyof typeof TRAIN_PRESETS;
export const TRAIN_RECIPES = Object.keys(TRAIN_PRESETS) as TrainRecipe[];

export interface RecipeOptions {
  size: number;
  channels: 1 | 3;
  mean?: readonly number[];
  std?: readonly number[];
  /** multiscale: the shorter sides to evaluate at (default: size × 256/224, 288/224, 320/224... VGG's Q). */
  scales?: readonly number[];
  /** The input's height when it is not square (`size` is then its width): center and none views only. */
  height?: number;
}

interface Geo {
  sw: number;
  sh: number;
  left: number;
  top: number;
  vw: number;
  vh: number;
  flip: boolean;
}

function posInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw expected('a positive integer', name, v);
  return v;
}

function unitRange(v: readonly number[], name: string, lo: number, hi: number): [number, number] {
  const [a, b] = v;
  if (v.length !== 2 || a === undefined || b === undefined || !(a >= lo && a <= b && b <= hi)) {
    throw expected(`[min, max] with ${lo} <= min <= max <= ${hi}`, name, v);
  }
  return [a, b];
}

export class Transforms {
  readonly channels: 1 | 3;
  readonly steps: readonly Step[];

  private constructor(channels: 1 | 3, steps: readonly Step[]) {
    this.channels = channels;
    this.steps = steps;
  }

  /** An empty pipeline: the source image as it is (only sensible for same-size images). */
  static create(channels: 1 | 3 = 3): Transforms {
    if (channels !== 1 && channels !== 3) throw expected('1 or 3', 'channels', channels);
    return new Transforms(channels, []);
  }

  static fromSpec(spec: TransformSpec): Transforms {
    return new Transforms(spec.channels, [...spec.steps]);
  }

  /** The papers' training augmentations, scaled to `size` (224 in the papers). */
  static train(recipe: TrainRecipe, o: RecipeOptions): Transforms {
    const s = posInt(o.size, 'size');
    const t = Transforms.create(o.channels);
    const r = (x: number): number => Math.round((s * x) / 224);
    const norm = (x: Transforms): Transforms => x.normalize(o.mean ?? defaultMean(o.channels), o.std ?? defaultStd(o.channels));
    switch (recipe) {
      case 'alexnet': // shorter side 256, random 224 crops, flips, PCA lighting
        return norm(t.resizeShorter(r(256)).randomCrop(s).hflip().lighting());
      case 'vgg': // scale jitter S ∈ [256, 512], random 224 crops, flips, RGB colour shift
        return norm(
          t
            .resizeShorter([r(256), r(512)])
            .randomCrop(s)
            .hflip()
            .lighting(),
        );
      case 'googlenet': // 8–100 % area, aspect 3/4–4/3, flips, photometric distortions (Howard 2013)
        return norm(t.randomResizedCrop(s).hflip().colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4 }));
      case 'cifar': // pad by size/8 and crop, flips (small in-memory images)
        return norm(
          t
            .resize(s, s)
            .randomCrop(s, { padding: Math.max(1, Math.round(s / 8)) })
            .hflip(),
        );
      case 'flip': // the whole image, mirrored half of the time (small images where position matters)
        return norm(t.resize(s, s).hflip());
      case 'none':
        return norm(t.resize(s, s));
      default:
        throw expected(orList(TRAIN_RECIPES, "'"), 'train transform', recipe);
    }
  }

  /** Test-time views: one center crop, AlexNet's 10 crops, or VGG-style multiple scales. */
  static eval(recipe: EvalRecipe, o: RecipeOptions): Transforms {
    const s = posInt(o.size, 'size');
    const t = Transforms.create(o.channels);
    const norm = (x: Transforms): Transforms => x.normalize(o.mean ?? defaultMean(o.channels), o.std ?? defaultStd(o.channels));
    const shorter = Math.round((s * 256) / 224);
    const h = posInt(o.height ?? s, 'height');
    if (h !== s) {
      // A W×H window in the centre of the image resized to cover it with the papers' 256/224 margin, or the whole image resized.
      if (recipe === 'center') return norm(t.resizeShorter(Math.round((Math.max(s, h) * 256) / 224)).centerCrop(s, h));
      if (recipe === 'none') return norm(t.resize(s, h));
      const crop = EVAL_VIEWS[recipe]?.crop ?? recipe;
      throw new UsageError(`Expected --crop center or full for a ${s}×${h} (non-square) input but received --crop ${crop}`);
    }
    switch (recipe) {
      case 'center':
        return norm(t.resizeShorter(shorter).centerCrop(s));
      case 'ten': // AlexNet (Sec. 4.1): the central 256×256 square, its 4 corner and centre 224 crops, mirrored
        return norm(t.resizeShorter(shorter).centerCrop(shorter).tenCrop(s));
      case 'multiscale':
        return norm(t.multiScale(o.scales ?? [256, 288, 320].map((x) => Math.round((s * x) / 224)), s));
      case 'googlenet':
        return norm(t.googlenetCrops(o.scales ?? [256, 288, 320, 352].map((x) => Math.round((s * x) / 224)), s));
      case 'none':
        return norm(t.resize(s, s));
      default:
        throw expected(orList(EVAL_RECIPES, "'"), 'eval transform', recipe);
    }
  }

  /**
   * VGG's dense evaluation at one scale: the whole image with its shorter side at `shorter` (the
   * paper's Q), and its mirror image. The output size follows the image's aspect ratio, so a
   * loader cannot batch it; src/trained/evaluate.ts renders such views one image at a time.
   */
  static dense(shorter: number, o: Omit<RecipeOptions, 'size' | 'scales'>): Transforms {
    const t = Transforms.create(o.channels).resizeShorter(posInt(shorter, 'dense scale')).withMirror();
    return t.normalize(o.mean ?? defaultMean(o.channels), o.std ?? defaultStd(o.channels));
  }

  private with(step: Step): Transforms {
    if (
      this.steps.some((x) => x.op === 'tenCrop' || x.op === 'multiScale' || x.op === 'withMirror' || x.op === 'googlenetCrops') &&
      isGeometric(step)
    ) {
      throw expected('no geometric step after tenCrop/multiScale/withMirror/googlenetCrops', 'transform', step.op);
    }
    return new Transforms(this.channels, [...this.steps, step]);
  }

  /** Shorter side to `size`; with [min, max], to a uniform integer in that range (VGG scale jitter). */
  resizeShorter(size: number | readonly [number, number]): Transforms {
    const [min, max] = typeof size === 'number' ? [size, size] : size;
    posInt(min, 'resizeShorter min');
    posInt(max, 'resizeShorter max');
    if (max < min) throw expected('min <= max', 'resizeShorter', size);
    return this.with({ op: 'resizeShorter', min, max });
  }

  resize(width: number, height: number): Transforms {
    return this.with({ op: 'resize', width: posInt(width, 'resize width'), height: posInt(height, 'resize height') });
  }

  /** A random size×size window; with padding, the image is first padded by zeros on each side. */
  randomCrop(size: number, o: { padding?: number } = {}): Transforms {
    const padding = o.padding ?? 0;
    if (!Number.isInteger(padding) || padding < 0) throw expected('a non-negative integer', 'randomCrop padding', padding);
    return this.with({ op: 'randomCrop', size: posInt(size, 'randomCrop size'), padding });
  }

  /** A size×size window in the centre; with `height`, size wide and height high. */
  centerCrop(size: number, height?: number): Transforms {
    if (height === undefined || height === size) return this.with({ op: 'centerCrop', size: posInt(size, 'centerCrop size') });
    return this.with({ op: 'centerCrop', size: posInt(size, 'centerCrop size'), height: posInt(height, 'centerCrop height') });
  }

  /** GoogLeNet / Inception: a crop of 8–100 % of the area with aspect 3/4–4/3, resized to size×size. */
  randomResizedCrop(size: number, o: { scale?: readonly number[]; ratio?: readonly number[] } = {}): Transforms {
    const scale = unitRange(o.scale ?? [0.08, 1], 'randomResizedCrop scale', 1e-6, 1);
    const ratio = unitRange(o.ratio ?? [3 / 4, 4 / 3], 'randomResizedCrop ratio', 1e-3, 1e3);
    return this.with({ op: 'randomResizedCrop', size: posInt(size, 'randomResizedCrop size'), scale, ratio });
  }

  hflip(p = 0.5): Transforms {
    if (!(p >= 0 && p <= 1)) throw expected('a probability in [0, 1]', 'hflip p', p);
    return this.with({ op: 'hflip', p });
  }

  /** The 4 corners and the center, each also mirrored: 10 views per image. */
  tenCrop(size: number): Transforms {
    return this.with({ op: 'tenCrop', size: posInt(size, 'tenCrop size') });
  }

  /** Each view and its mirror image: twice the views. */
  withMirror(): Transforms {
    return this.with({ op: 'withMirror' });
  }

  /** At each shorter side in `scales`, a center crop (or 10 crops with `ten`). */
  multiScale(scales: readonly number[], size: number, o: { ten?: boolean } = {}): Transforms {
    if (scales.length === 0) throw expected('at least one scale', 'multiScale scales', scales);
    scales.forEach((s, i) => posInt(s, `multiScale scales[${i}]`));
    return this.with({ op: 'multiScale', scales: [...scales], size: posInt(size, 'multiScale size'), ten: o.ten ?? false });
  }

  /**
   * GoogLeNet's 144 test crops (Szegedy et al. 2014, Sec. 7): at each shorter side in `scales`
   * (the paper: 256, 288, 320, 352), the left, centre and right squares (top, centre, bottom for
   * portrait images); of each square the 4 corner and the centre size×size crops and the whole
   * square resized to size×size; each also mirrored. 4 scales × 3 × 6 × 2 = 144 views.
   */
  googlenetCrops(scales: readonly number[], size: number): Transforms {
    if (scales.length === 0) throw expected('at least one scale', 'googlenetCrops scales', scales);
    const n = posInt(size, 'googlenetCrops size');
    scales.forEach((s, i) => {
      if (posInt(s, `googlenetCrops scales[${i}]`) < n)
        throw expected(`scales of at least the crop size ${n}`, 'googlenetCrops scales', scales);
    });
    return this.with({ op: 'googlenetCrops', scales: [...scales], size: n });
  }

  /** Brightness/contrast/saturation factors drawn uniformly from [1 - x, 1 + x]. */
  colorJitter(o: { brightness?: number; contrast?: number; saturation?: number }): Transforms {
    const f = (v: number | undefined, name: string): number => {
      const x = v ?? 0;
      if (!(x >= 0 && x <= 1)) throw expected('a number in [0, 1]', `colorJitter ${name}`, v);
      return x;
    };
    return this.with({
      op: 'colorJitter',
      brightness: f(o.brightness, 'brightness'),
      contrast: f(o.contrast, 'contrast'),
      saturation: f(o.saturation, 'saturation'),
    });
  }

  /** AlexNet's PCA lighting: adds Σ αᵢ λᵢ vᵢ with αᵢ ~ N(0, alphaStd); ImageNet's eigens unless given (see pcaLighting). */
  lighting(
    alphaStd = 0.1,
    eig: { eigval: readonly number[]; eigvec: readonly number[] } = { eigval: IMAGENET_EIGVAL, eigvec: IMAGENET_EIGVEC },
  ): Transforms {
    if (!(alphaStd >= 0)) throw expected('a non-negative number', 'lighting alphaStd', alphaStd);
    if (eig.eigval.length !== 3 || eig.eigvec.length !== 9) throw expected('3 eigenvalues and a 3×3 eigenvector matrix', 'lighting', eig);
    return this.with({ op: 'lighting', alphaStd, eigval: [...eig.eigval], eigvec: [...eig.eigvec] });
  }

  /** Per-channel (x/255 - mean) / std. */
  normalize(mean: readonly number[], std: readonly number[]): Transforms {
    if (mean.length !== this.channels || std.length !== this.channels) {
      throw expected(`${this.channels} values each`, 'normalize mean/std', { mean, std });
    }
    std.forEach((s) => {
      if (!(s > 0)) throw expected('positive standard deviations', 'normalize std', std);
    });
    return this.with({ op: 'normalize', mean: [...mean], std: [...std] });
  }

  toSpec(): TransformSpec {
    return { channels: this.channels, steps: [...this.steps] };
  }

  /** Views produced per image (1 for training transforms). */
  get views(): number {
    let n = 1;
    for (const s of this.steps) {
      if (s.op === 'tenCrop') n *= 10;
      if (s.op === 'withMirror') n *= 2;
      if (s.op === 'googlenetCrops') n *= s.scales.length * 3 * 12;
      if (s.op === 'multiScale') n *= s.scales.length * (s.ten ? 10 : 1);
    }
    return n;
  }

  /** The largest side any step resizes or crops to (0 when no step sets a size): what decoding needs to serve. */
  get largestSide(): number {
    let m = 0;
    for (const s of this.steps) {
      if (s.op === 'resizeShorter') m = Math.max(m, s.max);
      else if (s.op === 'resize') m = Math.max(m, s.width, s.height);
      else if (s.op === 'multiScale') m = Math.max(m, s.size, ...s.scales);
      else if (s.op === 'centerCrop') m = Math.max(m, s.size, s.height ?? 0);
      else if (s.op === 'randomCrop' || s.op === 'randomResizedCrop' || s.op === 'tenCrop') m = Math.max(m, s.size);
    }
    return m;
  }

  /** Output [height, width] for a source of the given size (fixed unless the pipeline ends without a crop/resize). */
  outputSize(width: number, height: number): [number, number] {
    const p = this.plan(new Rng(0), width, height);
    const v = p.views[0];
    return v ? [v.h, v.w] : [height, width];
  }

  /** The pure part: concrete views and pixel factors for one image. `rng` may be null for deterministic steps. */
  plan(rng: Rng | null, width: number, height: number): Plan {
    const draw = (): number => {
      if (!rng) throw new Error('Transforms.plan: a random step needs an Rng');
      return rng.next();
    };
    let geos: Geo[] = [{ sw: width, sh: height, left: 0, top: 0, vw: width, vh: height, flip: false }];
    let jitter: ColourJitter | null = null;
    const offset = [0, 0, 0];
    let mean: number[] = new Array<number>(this.channels).fill(0);
    let std: number[] = new Array<number>(this.channels).fill(1 / 255);
    for (const s of this.steps) {
      switch (s.op) {
        case 'resizeShorter': {
          const target = s.min === s.max ? s.min : s.min + Math.floor(draw() * (s.max - s.min + 1));
          geos = geos.map((g) => scaleGeo(g, target / Math.min(g.vw, g.vh), target / Math.min(g.vw, g.vh)));
          break;
        }
        case 'resize':
          geos = geos.map((g) => scaleGeo(g, s.width / g.vw, s.height / g.vh));
          break;
        case 'randomCrop':
          geos = geos.map((g) => {
            const x = Math.floor(draw() * (g.vw + 2 * s.padding - s.size + 1)) - s.padding;
            const y = Math.floor(draw() * (g.vh + 2 * s.padding - s.size + 1)) - s.padding;
            return cropGeo(g, x, y, s.size, s.size);
          });
          break;
        case 'centerCrop':
          geos = geos.map((g) => {
            const h = s.height ?? s.size;
            return cropGeo(g, Math.round((g.vw - s.size) / 2), Math.round((g.vh - h) / 2), s.size, h);
          });
          break;
        case 'randomResizedCrop':
          geos = geos.map((g) => {
            const c = rrcParams(draw, Math.round(g.vw), Math.round(g.vh), s.scale, s.ratio);
            return scaleGeo(cropGeo(g, c.x, c.y, c.w, c.h), s.size / c.w, s.size / c.h);
          });
          break;
        case 'hflip':
          geos = geos.map((g) => (draw() < s.p ? { ...g, flip: !g.flip } : g));
          break;
        case 'tenCrop':
          geos = geos.flatMap((g) => tenCrops(g, s.size));
          break;
        case 'withMirror':
          geos = geos.flatMap((g) => [g, { ...g, flip: !g.flip }]);
          break;
        case 'googlenetCrops':
          geos = geos.flatMap((g) => s.scales.flatMap((S) => googlenetCrops(g, S, s.size)));
          break;
        case 'multiScale':
          geos = geos.flatMap((g) =>
            s.scales.flatMap((S) => {
              const f = S / Math.min(g.vw, g.vh);
              const r = scaleGeo(g, f, f);
              return s.ten
                ? tenCrops(r, s.size)
                : [cropGeo(r, Math.round((r.vw - s.size) / 2), Math.round((r.vh - s.size) / 2), s.size, s.size)];
            }),
          );
          break;
        case 'colorJitter': {
          const u = (x: number): number => (x === 0 ? 1 : 1 - x + 2 * x * draw());
          jitter = { brightness: u(s.brightness), contrast: u(s.contrast), saturation: u(s.saturation) };
          break;
        }
        case 'lighting': {
          if (!rng) throw new Error('Transforms.plan: lighting needs an Rng');
          const a = [0, 1, 2].map((j) => rng.normal(0, s.alphaStd) * (s.eigval[j] ?? 0));
          for (let c = 0; c < 3; c++) {
            offset[c] = (offset[c] ?? 0) + [0, 1, 2].reduce((acc, j) => acc + (s.eigvec[c * 3 + j] ?? 0) * (a[j] ?? 0), 0);
          }
          break;
        }
        case 'normalize':
          mean = [...s.mean];
          std = [...s.std];
          break;
      }
    }
    const off = this.channels === 3 ? offset : [((offset[0] ?? 0) + (offset[1] ?? 0) + (offset[2] ?? 0)) / 3];
    const scale = std.map((sd) => 1 / (255 * sd));
    const bias = std.map((sd, c) => ((off[c] ?? 0) - (mean[c] ?? 0)) / sd);
    const views = geos.map((g) => ({
      sw: Math.max(1, Math.round(g.sw)),
      sh: Math.max(1, Math.round(g.sh)),
      left: Math.round(g.left),
      top: Math.round(g.top),
      w: Math.max(1, Math.round(g.vw)),
      h: Math.max(1, Math.round(g.vh)),
      flip: g.flip,
    }));
    return { views, jitter, offset: off, scale, bias };
  }
}

function isGeometric(s: Step): boolean {
  return [
    'resizeShorter',
    'resize',
    'randomCrop',
    'centerCrop',
    'randomResizedCrop',
    'hflip',
    'tenCrop',
    'multiScale',
    'withMirror',
    'googlenetCrops',
  ].includes(s.op);
}

export function defaultMean(channels: 1 | 3): number[] {
  return channels === 3 ? [...IMAGENET_MEAN] : [0.449];
}

export function defaultStd(channels: 1 | 3): number[] {
  return channels === 3 ? [...IMAGENET_STD] : [0.226];
}

function scaleGeo(g: Geo, fx: number, fy: number): Geo {
  return { sw: g.sw * fx, sh: g.sh * fy, left: g.left * fx, top: g.top * fy, vw: g.vw * fx, vh: g.vh * fy, flip: g.flip };
}

/** A crop at (x, y) in the current (possibly mirrored) view. */
function cropGeo(g: Geo, x: number, y: number, w: number, h: number): Geo {
  const xu = g.flip ? g.vw - x - w : x;
  return { ...g, left: g.left + xu, top: g.top + y, vw: w, vh: h };
}

function tenCrops(g: Geo, size: number): Geo[] {
  const W = Math.round(g.vw);
  const H = Math.round(g.vh);
  const at: [number, number][] = [
    [0, 0],
    [W - size, 0],
    [0, H - size],
    [W - size, H - size],
    [Math.round((W - size) / 2), Math.round((H - size) / 2)],
  ];
  const mirrored = { ...g, flip: !g.flip };
  return [...at.map(([x, y]) => cropGeo(g, x, y, size, size)), ...at.map(([x, y]) => cropGeo(mirrored, x, y, size, size))];
}

/** One scale of GoogLeNet's test crops: 3 squares × (5 crops + the square resized) × 2 mirrors. */
function googlenetCrops(g: Geo, shorter: number, size: number): Geo[] {
  const f = shorter / Math.min(g.vw, g.vh);
  const r = scaleGeo(g, f, f);
  const landscape = r.vw >= r.vh;
  const span = Math.round(landscape ? r.vw : r.vh) - shorter;
  return [0, Math.round(span / 2), span].flatMap((o) => {
    const square = cropGeo(r, landscape ? o : 0, landscape ? 0 : o, shorter, shorter);
    const six = [...tenCrops(square, size).slice(0, 5), scaleGeo(square, size / shorter, size / shorter)];
    return [...six, ...six.map((v) => ({ ...v, flip: !v.flip }))];
  });
}

/** torchvision's RandomResizedCrop.get_params, including its center-crop fallback after 10 tries. */
export function rrcParams(
  draw: () => number,
  W: number,
  H: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): { x: number; y: number; w: number; h: number } {
  const area = W * H;
  const lr0 = Math.log(ratio[0]);
  const lr1 = Math.log(ratio[1]);
  for (let t = 0; t < 10; t++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * draw());
    const aspect = Math.exp(lr0 + (lr1 - lr0) * draw());
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const y = Math.floor(draw() * (H - h + 1));
      const x = Math.floor(draw() * (W - w + 1));
      return { x, y, w, h };
    }
  }
  const inRatio = W / H;
  let w = W;
  let h = H;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { x: Math.floor((W - w) / 2), y: Math.floor((H - h) / 2), w, h };
}

/**
 * PCA lighting computed from the dataset (AlexNet §4.1): eigen-decomposition of the RGB covariance
 * of the given images' pixels in [0, 1], eigenvalues as standard deviations like ImageNet's table.
 */
export function pcaLighting(images: readonly Image8[]): { eigval: number[]; eigvec: number[] } {
  const s = [0, 0, 0];
  const ss = new Array<number>(9).fill(0);
  let n = 0;
  for (const im of images) {
    if (im.channels < 3) throw expected('RGB images', 'pcaLighting', `${im.channels} channel(s)`);
    const step = Math.max(1, Math.floor((im.width * im.height) / 4096)) * im.channels;
    for (let p = 0; p + 2 < im.data.length; p += step) {
      const v = [(im.data[p] ?? 0) / 255, (im.data[p + 1] ?? 0) / 255, (im.data[p + 2] ?? 0) / 255];
      for (let i = 0; i < 3; i++) {
        s[i] = (s[i] ?? 0) + (v[i] ?? 0);
        for (let j = 0; j < 3; j++) ss[i * 3 + j] = (ss[i * 3 + j] ?? 0) + (v[i] ?? 0) * (v[j] ?? 0);
      }
      n++;
    }
  }
  if (n < 2) throw expected('at least two pixels', 'pcaLighting', n);
  const cov = ss.map((x, k) => x / n - ((s[Math.floor(k / 3)] ?? 0) / n) * ((s[k % 3] ?? 0) / n));
  const { values, vectors } = jacobiEigen3(cov);
  const order = [0, 1, 2].sort((a, b) => (values[b] ?? 0) - (values[a] ?? 0));
  return {
    eigval: order.map((k) => Math.sqrt(Math.max(0, values[k] ?? 0))),
    eigvec: [0, 1, 2].flatMap((r) => order.map((k) => vectors[r * 3 + k] ?? 0)),
  };
}

/** Cyclic Jacobi for a symmetric 3×3 matrix; vectors are the columns of the row-major result. */
function jacobiEigen3(m: number[]): { values: number[]; vectors: number[] } {
  const a = [...m];
  const v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const at = (r: number, c: number): number => a[r * 3 + c] ?? 0;
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = at(0, 1) ** 2 + at(0, 2) ** 2 + at(1, 2) ** 2;
    if (off < 1e-30) break;
    for (const [p, q] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ] as const) {
      const apq = at(p, q);
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (at(q, q) - at(p, p)) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const sn = t * c;
      for (let k = 0; k < 3; k++) {
        const akp = at(k, p);
        const akq = at(k, q);
        a[k * 3 + p] = c * akp - sn * akq;
        a[k * 3 + q] = sn * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = at(p, k);
        const aqk = at(q, k);
        a[p * 3 + k] = c * apk - sn * aqk;
        a[q * 3 + k] = sn * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[k * 3 + p] ?? 0;
        const vkq = v[k * 3 + q] ?? 0;
        v[k * 3 + p] = c * vkp - sn * vkq;
        v[k * 3 + q] = sn * vkp + c * vkq;
      }
    }
  }
  return { values: [at(0, 0), at(1, 1), at(2, 2)], vectors: v };
}

/** The validation view that matches a training preset (TRAIN_PRESETS). */
export function evalViewFor(augment: TrainRecipe): EvalRecipe {
  return TRAIN_PRESETS[augment].view;
}
