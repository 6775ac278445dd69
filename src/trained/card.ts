/**
 * What an exported ONNX file says about itself, in its `metadata_props` (docs/file-formats.md),
 * so that evaluate, predict and visualize treat it exactly as its checkpoint: the zoo model and its
 * options (`ilsvrc.model`, `ilsvrc.options`, written by the exporter), and here the class names,
 * the evaluation view, the input it expects (size, channels, normalisation, the resize and crop
 * spelled out for other tools) and the identity of the data it learned from.
 */
import { EVAL_RECIPES, type DataIdentity, type EvalRecipe } from '../data/index.js';
import { METADATA } from '../zoo/export.js';
import { describe, UsageError } from '../util/errors.js';
import { parseJson } from '../util/json.js';
import { zooInput, type InputFlags, type ModelInput } from './input.js';

/** The fields beyond model and options, as a reader gets them back. */
interface ModelCard {
  classes?: string[];
  view?: EvalRecipe;
  data?: DataIdentity;
}

/**
 * `ilsvrc.input`: enough for a tool that is not ilsvrc to feed the model as evaluate does, and for
 * ilsvrc to feed an ONNX model from elsewhere that `export` re-wrote with the flags it needed.
 */
interface InputSpec {
  /** [N, C, H, W] or [N, H, W, C], float32, RGB (or gray) pixels 0..255 × scale, minus mean, over std, per channel. */
  layout: 'NCHW' | 'NHWC';
  /** The side of a square input (readers of the first form); height and width say it for any. */
  size?: number;
  height: number;
  width: number;
  channels: number;
  scale: number;
  mean: number[];
  std: number[];
  /** What the output holds: "logits", or "probabilities" (a Softmax already ends the graph). */
  output: ModelInput['output'];
  /** The evaluation view: resize the shorter side to `resizeShorter` then centre-crop `crop` (view "center"), or resize the whole image to width × height (view "none"). */
  view: EvalRecipe;
  resizeShorter: number | null;
  crop: number | [number, number] | null;
}

/** The description of a model's input and its evaluation view's geometry, as Transforms.eval applies it. */
function inputSpec(d: ModelInput, view: EvalRecipe): InputSpec {
  const center = view !== 'none';
  const square = d.height === d.width;
  return {
    layout: d.layout === 'nchw' ? 'NCHW' : 'NHWC',
    ...(square ? { size: d.width } : {}),
    height: d.height,
    width: d.width,
    channels: d.channels,
    scale: d.scale,
    mean: [...d.mean],
    std: [...d.std],
    output: d.output,
    view,
    resizeShorter: center ? Math.round((Math.max(d.height, d.width) * 256) / 224) : null,
    crop: center ? (square ? d.width : [d.width, d.height]) : null,
  };
}

/** The metadata entries of a card, for the exporter: `input` describes the graph's input, else it is ilsvrc's at size × size. */
export function cardMetadata(card: ModelCard & { size: number; channels: number; input?: ModelInput }): Record<string, string> {
  const view = card.view ?? 'center';
  return {
    ...(card.classes ? { [METADATA.classes]: JSON.stringify(card.classes) } : {}),
    [METADATA.view]: view,
    [METADATA.input]: JSON.stringify(inputSpec(card.input ?? zooInput(card.size, card.channels), view)),
    ...(card.data ? { [METADATA.data]: JSON.stringify(card.data) } : {}),
  };
}

/**
 * How the `ilsvrc.input` entry says the model is fed, as the input flags would say it; undefined
 * without one. Its shape (size, channels) is the graph's to say and is checked against it there.
 */
export function recordedInput(props: Readonly<Record<string, string>>, file: string): InputFlags | undefined {
  const raw = props[METADATA.input];
  if (raw === undefined) return undefined;
  const where = `in the "${METADATA.input}" metadata of ${file}`;
  const v = parseJson(raw, where) as Partial<Record<keyof InputSpec, unknown>> | null;
  const numbers = (x: unknown, ok: (n: number) => boolean) =>
    Array.isArray(x) && (x.length === 1 || x.length === 3) && x.every((n) => typeof n === 'number' && Number.isFinite(n) && ok(n));
  if (
    typeof v !== 'object' ||
    v === null ||
    (v.layout !== 'NCHW' && v.layout !== 'NHWC') ||
    (v.scale !== undefined && !(typeof v.scale === 'number' && v.scale > 0 && Number.isFinite(v.scale))) ||
    !numbers(v.mean, () => true) ||
    !numbers(v.std, (n) => n > 0)
  ) {
    const want = '{"layout": "NCHW" or "NHWC", "scale"?: a positive number, "mean": 1 or 3 numbers, "std": 1 or 3 positive numbers}';
    throw new UsageError(`Expected ${want} ${where} but received ${describe(v)}`);
  }
  return {
    layout: v.layout === 'NCHW' ? 'nchw' : 'nhwc',
    inputScale: typeof v.scale === 'number' ? v.scale : 1 / 255,
    mean: v.mean as number[],
    std: v.std as number[],
  };
}

/** Reads the card's entries (each optional: files exported before they existed have none), checked. */
export function readCard(props: Readonly<Record<string, string>>, file: string): ModelCard {
  const json = (key: string): unknown => {
    const raw = props[key];
    return raw === undefined ? undefined : parseJson(raw, `in the "${key}" metadata of ${file}`);
  };
  const card: ModelCard = {};
  const classes = json(METADATA.classes);
  if (classes !== undefined) {
    if (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string'))
      throw new UsageError(
        `Expected an array of class names in the "${METADATA.classes}" metadata of ${file} but received ${describe(classes)}`,
      );
    card.classes = classes as string[];
  }
  const view = props[METADATA.view];
  if (view !== undefined) {
    if (!(EVAL_RECIPES as readonly string[]).includes(view)) {
      const what = `one of ${EVAL_RECIPES.join(', ')}`;
      throw new UsageError(`Expected ${what} in the "${METADATA.view}" metadata of ${file} but received ${describe(view)}`);
    }
    card.view = view as EvalRecipe;
  }
  const data = json(METADATA.data);
  if (data !== undefined) {
    const d = data as Record<string, unknown> | null;
    if (
      typeof d !== 'object' ||
      d === null ||
      (d['spec'] !== undefined && typeof d['spec'] !== 'string') ||
      (d['synthetic'] !== undefined && (typeof d['synthetic'] !== 'object' || d['synthetic'] === null))
    ) {
      throw new UsageError(`Expected {"spec"?, "synthetic"?} in the "${METADATA.data}" metadata of ${file} but received ${describe(data)}`);
    }
    card.data = d as DataIdentity;
  }
  return card;
}
