/**
 * A loader worker thread: rebuilds the dataset and transform from plain data once, then renders
 * samples straight into the batch's shared memory and answers with the skip reason (or null).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Limiter } from '../util/limiter.js';
import { Rng } from '../util/rng.js';
import { type DatasetDescriptor, datasetFromDescriptor } from './dataset.js';
import { type BatchTarget, type DecodeOptions, renderSample } from './decode.js';
import { Transforms, type TransformSpec } from './transforms.js';

interface Init {
  dataset: DatasetDescriptor;
  transform: TransformSpec;
  decode: DecodeOptions;
  /** Samples in flight in this worker. */
  concurrency: number;
}

interface Task {
  id: number;
  index: number;
  rngState: number;
  target: BatchTarget;
  slot: number;
}

const init = workerData as Init;
const ds = datasetFromDescriptor(init.dataset);
const tf = Transforms.fromSpec(init.transform);
const port = parentPort;
if (!port) throw new Error('worker.ts must run as a worker thread');
const limit = new Limiter(init.concurrency);

port.on('message', (m: Task) => {
  limit
    .use(() => renderSample(ds, m.index, tf, Rng.fromState(m.rngState), m.target, m.slot, init.decode))
    .then(
      (result) => port.postMessage({ id: m.id, result }),
      (e: unknown) => port.postMessage({ id: m.id, result: null, error: e instanceof Error ? e.message : String(e) }),
    );
});
