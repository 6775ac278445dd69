/**
 * The page's three pictures of a trained network, computed by src/viz as `ilsvrc visualize` computes
 * them (the same graphs, rules and words): conv1's filters, the deconvnet projection of the strongest
 * unit of the last layer with feature maps (ZF 2014 Fig. 2) and the occlusion maps (Fig. 7). Each is
 * a FigureSpec: the page draws it on a canvas where the CLI renders it as PNG.
 */
import type { FigureSpec } from '../plot/raster.js';
import type { SessionOptions } from '../runtime/ort.js';
import { convOf, FILTER_DEFAULTS, filterStats, filtersFigure } from '../viz/kernels.js';
import { zooBuild, type Network } from '../viz/layers.js';
import { defaultOcclusion, occlusion, occlusionFigure } from '../viz/occlusion-map.js';
import { projectImage, projectionsFigure } from '../viz/projection.js';
import { webSession, type WebTrainer } from './trainer.js';

/** Occluded copies per probe run: a 32-pixel grid is one run. */
const OCCLUSION_BATCH = 16;

/** The trainer's current weights as the Network src/viz looks into; its probes run on the page's provider. */
export function webNetwork(t: WebTrainer, options: SessionOptions): Network {
  return {
    name: t.config.model,
    build: zooBuild(t.config.model, t.built.options),
    weights: t.params,
    channels: 3,
    inputSize: t.config.inputSize,
    numClasses: t.config.classes,
    classes: t.checkpointClasses,
    view: 'none',
    session: (model) => webSession(model, options),
  };
}

/** conv1's filters, as `ilsvrc visualize filters` draws them. */
export function filtersPicture(net: Network): FigureSpec {
  const cw = convOf(net, net.build(1));
  const w = net.weights.get(cw.weight.name ?? '');
  if (!w) throw new Error(`${net.name} has no weights for ${cw.weight.name ?? cw.layer}`);
  return filtersFigure(net, cw, w, filterStats(w, cw.weight.shape, FILTER_DEFAULTS.dead), FILTER_DEFAULTS).spec;
}

interface ImagePictures {
  deconvnet: FigureSpec;
  occlusion: FigureSpec;
  /** The predicted class's index and probability, the lowest probability under the grey square, the projected channel. */
  predicted: number;
  probability: number;
  lowest: number;
  channel: number;
}

/** The deconvnet projection of the strongest unit and the occlusion maps of image `x` (normalised CHW) called `name`. */
export async function imagePictures(net: Network, x: Float32Array, name: string): Promise<ImagePictures> {
  const { result, projections } = await projectImage(net, x, { mode: 'deconvnet', count: 1, batch: 1 });
  const o = await occlusion(net, x, { ...defaultOcclusion(net.inputSize), batch: OCCLUSION_BATCH });
  return {
    deconvnet: projectionsFigure(net, x, result, projections, name),
    occlusion: occlusionFigure(net, x, o, name),
    predicted: o.predicted,
    probability: o.clean,
    lowest: Math.min(...o.probability),
    channel: result.units[0]!.channel,
  };
}
