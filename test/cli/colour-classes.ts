/**
 * A classifier of any number of classes whose answers a test knows: class c is a solid colour,
 * and the model (an ONNX graph from elsewhere: mean of each channel, then one Gemm) scores each
 * class by the nearest colour, so an image painted in class c's colour is predicted as c. An
 * ImageFolder of such images, some painted in another class's colour, has a known confusion.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/index.js';
import { encodeModel, TensorDataType } from '../../src/onnx/proto.js';
import { encodePngSync } from '../../src/plot/image.js';

/** Class c's colour: distinct for up to levels³ classes, levels as few as that allows. */
export function colourOf(c: number, classes: number): [number, number, number] {
  const levels = Math.max(2, Math.ceil(Math.cbrt(classes)));
  const level = (i: number) => Math.round((255 * i) / (levels - 1));
  return [level(c % levels), level(Math.floor(c / levels) % levels), level(Math.floor(c / levels ** 2))];
}

/** The model's input, as evaluate feeds it: the colour normalised with ImageNet's mean and std. */
function normalised(rgb: readonly number[]): number[] {
  return rgb.map((v, ch) => (v / 255 - IMAGENET_MEAN[ch]!) / IMAGENET_STD[ch]!);
}

/** Input [N, 3, size, size] → scores [N, classes]: 2μ·x − |μ|², largest for the nearest colour μ. */
export function colourModel(classes: number, size: number): Uint8Array {
  const w = new Float32Array(3 * classes);
  const b = new Float32Array(classes);
  for (let c = 0; c < classes; c++) {
    const mu = normalised(colourOf(c, classes));
    mu.forEach((m, ch) => (w[ch * classes + c] = 2 * m));
    b[c] = -mu.reduce((a, m) => a + m * m, 0);
  }
  const raw = (a: Float32Array) => new Uint8Array(a.buffer.slice(0));
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ version: 18 }],
    graph: {
      name: 'nearest-colour',
      node: [
        { input: ['images'], output: ['pooled'], opType: 'GlobalAveragePool', name: 'gap' },
        { input: ['pooled'], output: ['flat'], opType: 'Flatten', name: 'flat' },
        { input: ['flat', 'w', 'b'], output: ['scores'], opType: 'Gemm', name: 'fc' },
      ],
      initializer: [
        { name: 'w', dims: [3, classes], dataType: TensorDataType.FLOAT, rawData: raw(w) },
        { name: 'b', dims: [classes], dataType: TensorDataType.FLOAT, rawData: raw(b) },
      ],
      input: [{ name: 'images', type: tensorType([{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: size }, { dimValue: size }]) }],
      output: [{ name: 'scores', type: tensorType([{ dimParam: 'N' }, { dimValue: classes }]) }],
    },
  });
}

function tensorType(dim: ({ dimParam: string } | { dimValue: number })[]) {
  return { tensorType: { elemType: TensorDataType.FLOAT, shape: { dim } } };
}

/**
 * `root/train/<name>/…png` (val links to train), `perClass` images per class, each painted in
 * its class's colour except where `paint(c, j)` names another class. Returns the painted class of
 * every image, by class then image.
 */
export function writeColourFolder(
  root: string,
  names: readonly string[],
  perClass: number,
  size: number,
  paint: (c: number, j: number) => number = (c) => c,
): number[][] {
  const C = names.length;
  const pngs = new Map<number, Buffer>();
  const png = (k: number): Buffer => {
    let p = pngs.get(k);
    if (!p) {
      const rgb = new Uint8Array(size * size * 3);
      const colour = colourOf(k, C);
      for (let i = 0; i < size * size; i++) rgb.set(colour, 3 * i);
      pngs.set(k, (p = encodePngSync(rgb, size, size)));
    }
    return p;
  };
  const painted = names.map((name, c) => {
    const dir = join(root, 'train', name);
    mkdirSync(dir, { recursive: true });
    return Array.from({ length: perClass }, (_, j) => {
      const k = paint(c, j);
      writeFileSync(join(dir, `${j}.png`), png(k));
      return k;
    });
  });
  symlinkSync('train', join(root, 'val'));
  return painted;
}
