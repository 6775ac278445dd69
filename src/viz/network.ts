/**
 * Networks from files and in Node: a training checkpoint or an exported ONNX file (read and checked
 * by `readTrained`) as a zoo network whose probes run on the CPU device. The portable part (layers,
 * probes' graphs) is layers.ts.
 */
import type { ModelOptions } from '../zoo/index.js';
import type { ModelProto } from '../onnx/proto.js';
import { createDeviceSession } from '../runtime/device.js';
import type { OrtSession } from '../runtime/ort.js';
import { readTrained, zooModel } from '../trained/inference.js';
import type { DataIdentity, EvalRecipe } from '../data/index.js';
import { zooBuild, type Network } from './layers.js';

export { findLayer, layerNames, type Network, type NetworkGraph } from './layers.js';

/** A probe's session on the CPU (threads undefined: all cores): lowered as the CPU runs the gradient composites of projections. */
export function cpuSession(model: ModelProto, threads?: number): Promise<OrtSession> {
  return createDeviceSession(model, threads ? { threads } : {});
}

/** A zoo model with the given weights. */
export function zooNetwork(
  model: string,
  options: ModelOptions,
  weights: ReadonlyMap<string, Float32Array>,
  classes?: string[],
  view: EvalRecipe = 'center',
  data?: DataIdentity,
): Network {
  const net: Network = {
    name: model,
    build: zooBuild(model, options),
    weights,
    channels: options.channels,
    inputSize: options.inputSize,
    numClasses: options.classes,
    classes,
    // The views of one image each; a file trained on whole images is looked at whole.
    view: view === 'none' ? 'none' : 'center',
    ...(data ? { data } : {}),
    session: (m) => cpuSession(m, net.threads),
  };
  return net;
}

/** A checkpoint (.safetensors) or an ONNX file exported by ilsvrc, read and checked by `readTrained`. */
export async function openNetwork(file: string, labels?: string): Promise<Network> {
  const t = zooModel(await readTrained(file, labels !== undefined ? { labels } : {}), 'visualize');
  return zooNetwork(t.model, t.options, t.weights, t.classes, t.view, t.data);
}
