/**
 * What an exported ONNX file says about itself, in its `metadata_props` (docs/file-formats.md),
 * so that evaluate, predict and visualize treat it exactly as its checkpoint: the zoo model and its
 * options (`ilsvrc.model`, `ilsvrc.options`, written by the exporter), and here the class names,
 * the evaluation view, the input it expects (size, channels, normalisation, the resize and crop
 * spelled out for other tools) and the identity of the data it learned from.
 */
import { defaultMean, defaultStd, EVAL_RECIPES, type DataIdentity, type EvalRecipe } from '../data/index.js';
import { METADATA } from '../zoo/export.js';
import { describe, UsageError } from '../util/errors.js';
import { parseJson } from '../util/json.js';

/** The fields beyond model and options, as a reader gets them back. */
interface ModelCard {
  classes?: string[];
  view?: EvalRecipe;
  data?: DataIdentity;
}

/** `ilsvrc.input`: enough for a tool that is not ilsvrc to feed the model as evaluate does. */
interface InputSpec {
  /** [N, channels, size, size], float32, RGB (or gray) in [0, 1] minus mean, over std, per channel. */
  layout: 'NCHW';
  size: number;
  channels: number;
  mean: number[];
  std: number[];
  /** The evaluation view: resize the shorter side to `resizeShorter` then centre-crop `crop` (view "center"), or resize the whole image to size × size (view "none"). */
  view: EvalRecipe;
  resizeShorter: number | null;
  crop: number | null;
}

/** The evaluation view's geometry at an input size, as Transforms.eval applies it. */
function inputSpec(size: number, channels: number, view: EvalRecipe): InputSpec {
  const c = channels === 1 ? 1 : 3;
  const center = view !== 'none';
  return {
    layout: 'NCHW',
    size,
    channels,
    mean: [...defaultMean(c)],
    std: [...defaultStd(c)],
    view,
    resizeShorter: center ? Math.round((size * 256) / 224) : null,
    crop: center ? size : null,
  };
}

/** The metadata entries of a card, for the exporter. */
export function cardMetadata(card: ModelCard & { size: number; channels: number }): Record<string, string> {
  const view = card.view ?? 'center';
  return {
    ...(card.classes ? { [METADATA.classes]: JSON.stringify(card.classes) } : {}),
    [METADATA.view]: view,
    [METADATA.input]: JSON.stringify(inputSpec(card.size, card.channels, view)),
    ...(card.data ? { [METADATA.data]: JSON.stringify(card.data) } : {}),
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
