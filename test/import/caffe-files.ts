/**
 * Test helpers for Caffe networks: a `.caffemodel` written from an ilsvrc model's weight layers (a
 * chain of Convolution and InnerProduct layers after an Input layer, in caffe.proto's field
 * numbers), and the pixels of Caffe's convention (BGR, 0–255 less the mean) computed from the
 * pipeline's (RGB, (x/255 − mean)/std) and back, in float64.
 */
import protobuf from 'protobufjs';
import { modelLayers } from '../../src/import/index.js';
import type { BuiltModel } from '../../src/zoo/index.js';

const TV_MEAN = [0.485, 0.456, 0.406];
const TV_STD = [0.229, 0.224, 0.225];
/** B, G, R: the per-channel mean of BVLC's ilsvrc_2012_mean. */
const CAFFE_MEAN = [104.00698793, 116.66876762, 122.67891434];

/** Pipeline tensor (N×3×H×W, RGB normalised) → Caffe's (BGR, 0–255, less the mean). */
export function toCaffe(x: Float32Array, n: number, plane: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const r = 2 - c;
      for (let k = 0; k < plane; k++)
        out[(i * 3 + c) * plane + k] = 255 * (x[(i * 3 + r) * plane + k]! * TV_STD[r]! + TV_MEAN[r]!) - CAFFE_MEAN[c]!;
    }
  }
  return out;
}

/** Caffe's tensor → the pipeline tensor that `toCaffe` maps to it. */
export function fromCaffe(x: Float32Array, n: number, plane: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < 3; r++) {
      const c = 2 - r;
      for (let k = 0; k < plane; k++)
        out[(i * 3 + r) * plane + k] = (x[(i * 3 + c) * plane + k]! + CAFFE_MEAN[c]! - 255 * TV_MEAN[r]!) / (255 * TV_STD[r]!);
    }
  }
  return out;
}

const LEN = 2;
function sub(w: protobuf.Writer, field: number, body: (w: protobuf.Writer) => void): void {
  w.uint32((field << 3) | LEN).fork();
  body(w);
  w.ldelim();
}
const str = (w: protobuf.Writer, field: number, s: string) => w.uint32((field << 3) | LEN).string(s);
const int = (w: protobuf.Writer, field: number, v: number) => w.uint32(field << 3).uint32(v);

function blob(w: protobuf.Writer, shape: readonly number[], data: Float32Array): void {
  sub(w, 7, (b) => {
    sub(b, 5, (d) => data.forEach((v) => d.float(v))); // data, packed
    sub(b, 7, (s) => sub(s, 1, (d) => shape.forEach((v) => d.int64(v)))); // shape { dim }
  });
}

/** A NetParameter with `built`'s weight layers in order, each holding the weights of `weights`. */
export function chainCaffemodel(built: BuiltModel, weights: ReadonlyMap<string, Float32Array>): Uint8Array {
  const w = protobuf.Writer.create();
  str(w, 1, 'chain');
  const o = built.options;
  sub(w, 100, (l) => {
    str(l, 1, 'data');
    str(l, 2, 'Input');
    str(l, 4, 'data');
    sub(l, 143, (p) => sub(p, 1, (s) => sub(s, 1, (d) => [1, o.channels, o.inputSize, o.inputSize].forEach((v) => d.int64(v)))));
  });
  let bottom = 'data';
  for (const layer of modelLayers(built)) {
    const name = layer.weight.replace(/\.weight$/, '');
    sub(w, 100, (l) => {
      str(l, 1, name);
      str(l, 2, layer.conv ? 'Convolution' : 'InnerProduct');
      str(l, 3, bottom);
      str(l, 4, name);
      blob(l, layer.shape, weights.get(layer.weight)!);
      blob(l, [layer.shape[0]!], weights.get(layer.bias ?? '') ?? new Float32Array(layer.shape[0]!));
      if (layer.conv) {
        const c = layer.conv;
        sub(l, 106, (p) => {
          int(p, 1, layer.shape[0]!);
          int(p, 3, c.pads[0] ?? 0);
          int(p, 4, layer.shape[2]!);
          int(p, 5, c.group);
          int(p, 6, c.strides[0] ?? 1);
        });
      } else {
        sub(l, 117, (p) => int(p, 1, layer.shape[0]!));
      }
    });
    bottom = name;
  }
  return w.finish();
}
