/**
 * ONNX classifiers from other exporters: a channels-last graph with a Softmax at its end (Keras
 * through tf2onnx) answers as onnxruntime run directly on it; bad input flags, shapes no image
 * classifier has, a layout the graph contradicts and a damaged input record are one line each,
 * exit 2, naming the flag or the file.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  declaredShapeModel,
  directProbabilities,
  type Feeding,
  kerasLikeModel,
  topIndices,
  writeNoisePng,
} from '../../test/cli/foreign-onnx.js';
import { assertOk, assertRefused, cli, type Case, type Context } from './harness.js';

const esc = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/** A Keras-like 160×224 classifier and an image of its size, in the case's folder. */
async function kerasFiles(ctx: Context): Promise<{ model: string; image: string }> {
  mkdirSync(ctx.dir, { recursive: true });
  const model = join(ctx.dir, 'keras.onnx');
  writeFileSync(model, kerasLikeModel({ height: 160, width: 224, classes: 7, layout: 'nhwc', softmax: true }));
  const image = join(ctx.dir, 'image.png');
  await writeNoisePng(image, 224, 160, 3);
  return { model, image };
}

export const FOREIGN_ONNX: Case[] = [
  {
    name: 'foreign-onnx-channels-last',
    what: 'a Keras-like NHWC graph with a Softmax, 160×224',
    async run(ctx) {
      const { model, image } = await kerasFiles(ctx);
      const r = await cli(['predict', model, image, '--json', '--crop', 'full', '--input-scale', '1/255']);
      assertOk(r);
      const got = (JSON.parse(r.stdout) as { top: { index: number; probability: number }[] }[])[0]!.top;
      const feed: Feeding = { layout: 'nhwc', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], softmax: true };
      const want = (await directProbabilities(model, [image], feed))[0]!;
      assert.deepEqual(
        got.map((t) => t.index),
        topIndices(want, 5),
      );
      for (const t of got) assert.ok(Math.abs(t.probability - want[t.index]!) <= 1e-6, `class ${t.index}`);
      return 'top-5 and probabilities as a direct onnxruntime run';
    },
  },
  {
    name: 'foreign-onnx-bad-flags',
    what: '--layout nhcw, --mean 1,2, --std 0, --input-scale abc',
    async run(ctx) {
      const { model, image } = await kerasFiles(ctx);
      const cases: [string[], RegExp][] = [
        [['--layout', 'nhcw'], /Expected one of nchw, nhwc for --layout but received "nhcw"/],
        [['--mean', '1,2'], /Expected 1 or 3 comma-separated numbers .* for --mean but received "1,2"/],
        [['--std', '0'], /Expected 1 or 3 comma-separated positive numbers .* for --std but received "0"/],
        [['--input-scale', 'abc'], /Expected a positive number or fraction \(1\/255\) for --input-scale but received "abc"/],
      ];
      const commands = (flags: string[]) => [
        ['predict', model, image, ...flags],
        ...(ctx.quick
          ? []
          : [
              ['evaluate', model, '--data', ctx.dir, ...flags],
              ['export', model, '-o', join(ctx.dir, 'x.onnx'), ...flags],
            ]),
      ];
      await Promise.all(cases.flatMap(([flags, p]) => commands(flags).map(async (args) => assertRefused(await cli(args), p))));
      return 'each one line naming the flag';
    },
  },
  {
    name: 'foreign-onnx-shapes',
    what: 'contradicted --layout, no channels axis, open H×W, 3 means for gray, damaged record',
    async run(ctx) {
      const { model, image } = await kerasFiles(ctx);
      const file = (name: string, bytes: Uint8Array) => (writeFileSync(join(ctx.dir, name), bytes), join(ctx.dir, name));
      const noChannels = file('no-channels.onnx', declaredShapeModel(['?', 5, 7, 9], ['?', 4]));
      const open = file('open.onnx', declaredShapeModel(['?', '?', '?', 3], ['?', 3]));
      const gray = file('gray.onnx', declaredShapeModel(['?', 1, 8, 8], ['?', 1]));
      const damaged = file('damaged.onnx', declaredShapeModel(['?', 3, 8, 8], ['?', 3], { 'ilsvrc.input': '{"layout":"NWHC"}' }));
      const cases: [string[], RegExp[]][] = [
        [
          ['predict', model, image, '--layout', 'nchw'],
          [esc(model), /to be \[N, 1 or 3, H, W\] for --layout nchw .* \[\?, 160, 224, 3\]/],
        ],
        [
          ['predict', noChannels, image],
          [esc(noChannels), /\[N, 1 or 3, H, W\] .* \[\?, 5, 7, 9\]/],
        ],
        [
          ['predict', open, image],
          [esc(open), /a fixed height and width .* \[\?, \?, \?, 3\]/],
        ],
        [
          ['predict', gray, image, '--mean', '0.1,0.2,0.3'],
          [esc(gray), /Expected 1 value for --mean \(.* takes 1 channel\) but received 0.1,0.2,0.3/],
        ],
        [
          ['predict', damaged, image],
          [esc(damaged), /"ilsvrc.input" metadata/, /NWHC/],
        ],
        [
          ['predict', model, image, '--crop', 'ten'],
          [/Expected --crop center or full for a 224×160 \(non-square\) input but received --crop ten/],
        ],
      ];
      await Promise.all((ctx.quick ? cases.slice(0, 3) : cases).map(async ([args, p]) => assertRefused(await cli(args), ...p)));
      return 'each one line naming the file and what it declares';
    },
  },
];
