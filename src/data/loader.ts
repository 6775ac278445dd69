/**
 * Batches for an epoch: a seeded shuffle, samples rendered concurrently (sharp on libuv threads,
 * or whole samples on worker threads), a few batches prefetched. Every sample's randomness comes
 * from Rng(seed).fork(epoch, index), never from a shared stream, so a batch is the same bytes
 * whatever the concurrency or worker count. An unreadable image is skipped, never replaced: its
 * row keeps its place with zero pixels and label -1 (what the loss and the hit counts ignore, as
 * PyTorch's ignore_index), and skipped() names it.
 *
 * Batches handed out are always backed by plain ArrayBuffers: ONNX Runtime rejects tensors over a
 * SharedArrayBuffer. Worker threads render into shared scratch memory, which is copied once into
 * the batch on this thread while the session runs elsewhere: 1.2–1.6 ms for 224 px × 32 images
 * (19 MB) into recycled memory; into fresh memory the page faults cost more than the copy, as they
 * do for any new batch.
 */
import { Worker } from 'node:worker_threads';
import { Limiter } from '../util/limiter.js';
import { Rng } from '../util/rng.js';
import type { Dataset } from './dataset.js';
import { type BatchTarget, DEFAULT_DECODE, type DecodeOptions, type Layout, pixelLimitFor, renderSample } from './decode.js';
import { expected, UsageError } from '../util/errors.js';
import type { Transforms } from './transforms.js';

interface BatchBase {
  labels: Int32Array;
  /** Real samples in this batch (the last batch may be smaller, or padded up to batchSize). */
  n: number;
  /** Batch number within the epoch. */
  index: number;
  epoch: number;
  /** Views per sample (1 in training; 10 for tenCrop…); the views of one sample are contiguous. */
  views: number;
  /** Dataset index of each sample. */
  indices: Int32Array;
  /** Rows among the first n whose image could not be read (label -1, zero pixels). */
  unreadable: number;
}

/** The label of a batch row whose image could not be read: ignored by the loss and the metrics. */
export const UNREADABLE = -1;

export interface Batch extends BatchBase {
  layout: 'nchw-f32';
  /** NCHW, normalised: [N*views, C, H, W]. */
  x: Float32Array;
  shape: [number, number, number, number];
}

/** Raw pixels for models whose first ONNX nodes cast, normalise and transpose. */
export interface BatchU8 extends BatchBase {
  layout: 'nhwc-u8';
  /** NHWC uint8: [N*views, H, W, C]. */
  x: Uint8Array;
  shape: [number, number, number, number];
  /** [N*views, C] lighting offsets in [0, 1] units: model input = (x / 255 + offset - mean) / std. */
  offset: Float32Array;
  mean: number[];
  std: number[];
}

export type BatchOf<L extends Layout> = L extends 'nhwc-u8' ? BatchU8 : Batch;

export interface LoaderOptions<L extends Layout = 'nchw-f32'> {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  dropLast: boolean;
  /** With dropLast false: fill the last batch up to batchSize from the epoch's start (n stays the real count). */
  padLast?: boolean;
  /** Batches rendered ahead of the consumer (default 2). */
  prefetch?: number;
  /** Worker threads rendering whole samples (0: sharp's libuv threads plus the main thread for the JS pass). */
  workers?: number;
  /** Samples in flight per thread (default: the libuv pool size). */
  concurrency?: number;
  channels: 1 | 3;
  layout?: L;
  /** Images with more pixels are skipped before decoding (default: pixelLimitFor(transform)). */
  limitInputPixels?: number;
  kernel?: DecodeOptions['kernel'];
  /** JPEGs through the native path when it is built (default true); false: sharp for every file. */
  nativeJpeg?: boolean;
}

export interface Skipped {
  path: string;
  reason: string;
}

/** Runs one sample into a batch target; in-process or on a worker. */
interface Executor {
  run(index: number, rngState: number, t: BatchTarget, slot: number): Promise<string | null>;
  close(): Promise<void>;
}

function defaultConcurrency(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  return Number.isInteger(n) && n > 0 ? n : 4;
}

class InProcess implements Executor {
  private readonly limit: Limiter;
  constructor(
    private readonly ds: Dataset,
    private readonly tf: Transforms,
    private readonly o: DecodeOptions,
    concurrency: number,
  ) {
    this.limit = new Limiter(concurrency);
  }
  run(index: number, rngState: number, t: BatchTarget, slot: number): Promise<string | null> {
    return this.limit.use(() => renderSample(this.ds, index, this.tf, Rng.fromState(rngState), t, slot, this.o));
  }
  async close(): Promise<void> {}
}

interface WorkerReply {
  id: number;
  result: string | null;
  error?: string;
}

class WorkerPool implements Executor {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, { resolve: (r: string | null) => void; reject: (e: Error) => void; worker: number }>();
  private nextId = 0;

  constructor(n: number, ds: Dataset, tf: Transforms, o: DecodeOptions, concurrency: number) {
    for (let k = 0; k < n; k++) {
      // Each worker limits its own samples in flight, so that every posted sample is rendered
      // even while this thread is blocked (a synchronous training step, say).
      const w = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: { dataset: ds.descriptor, transform: tf.toSpec(), decode: o, concurrency },
      });
      w.on('message', (m: WorkerReply) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.load[p.worker] = (this.load[p.worker] ?? 1) - 1;
        if (this.pending.size === 0) for (const x of this.workers) x.unref();
        if (m.error !== undefined) p.reject(new UsageError(m.error));
        else p.resolve(m.result);
      });
      w.on('error', (e) => {
        for (const [id, p] of this.pending) {
          if (p.worker === k) {
            this.pending.delete(id);
            p.reject(e);
          }
        }
      });
      w.unref();
      this.workers.push(w);
      this.load.push(0);
    }
  }

  run(index: number, rngState: number, t: BatchTarget, slot: number): Promise<string | null> {
    return this.post(index, rngState, t, slot);
  }

  private post(index: number, rngState: number, t: BatchTarget, slot: number): Promise<string | null> {
    // Least-loaded worker; results do not depend on which one renders a sample.
    let k = 0;
    for (let j = 1; j < this.workers.length; j++) if ((this.load[j] ?? 0) < (this.load[k] ?? 0)) k = j;
    const id = this.nextId++;
    this.load[k] = (this.load[k] ?? 0) + 1;
    // Idle workers must not keep the process alive; busy ones must, or an awaited batch could be dropped.
    if (this.pending.size === 0) for (const x of this.workers) x.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: k });
      this.workers[k]?.postMessage({ id, index, rngState, target: t, slot });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export class Loader<L extends Layout = 'nchw-f32'> {
  readonly batchSize: number;
  readonly layout: Layout;
  readonly views: number;
  /** Output [height, width] of every view. */
  readonly outputSize: [number, number];
  private readonly o: LoaderOptions<L>;
  private readonly exec: Executor;
  private readonly bad = new Map<number, string>();
  /** Batch memory handed back by recycle(), by byte length, for the next batches to reuse. */
  private readonly spare = new Map<number, ArrayBuffer[]>();
  /** Shared scratch memory that worker threads render into, by byte length. */
  private readonly spareShared = new Map<number, SharedArrayBuffer[]>();
  private readonly skippedByEpoch = new Map<number, Map<string, string>>();

  constructor(
    readonly dataset: Dataset,
    readonly transform: Transforms,
    opts: LoaderOptions<L>,
  ) {
    const int = (v: number | undefined, name: string, min: number): void => {
      if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw expected(`an integer >= ${min}`, name, v);
    };
    int(opts.batchSize, 'batchSize', 1);
    int(opts.prefetch, 'prefetch', 0);
    int(opts.workers, 'workers', 0);
    int(opts.concurrency, 'concurrency', 1);
    int(opts.limitInputPixels, 'limitInputPixels', 1);
    if (!Number.isInteger(opts.seed)) throw expected('an integer', 'seed', opts.seed);
    if (opts.channels !== 1 && opts.channels !== 3) throw expected('1 or 3', 'channels', opts.channels);
    if (transform.channels !== opts.channels)
      throw expected(`a transform for ${opts.channels} channel(s)`, 'transform', `${transform.channels} channel(s)`);
    if (dataset.length === 0) throw new UsageError('Expected a dataset with at least one image but it is empty');
    this.o = opts;
    this.batchSize = opts.batchSize;
    this.layout = opts.layout ?? 'nchw-f32';
    this.views = transform.views;
    const d = dataset.descriptor;
    if (d.kind === 'pixels') {
      this.outputSize = transform.outputSize(d.width, d.height);
    } else {
      const a = transform.outputSize(640, 480);
      const b = transform.outputSize(333, 517);
      if (a[0] !== b[0] || a[1] !== b[1])
        throw new UsageError(
          'Expected a transform with a fixed output size (ending in a crop or resize) for an image-file dataset but its output depends on the image size',
        );
      this.outputSize = a;
    }
    const decode: DecodeOptions = {
      limitInputPixels: opts.limitInputPixels ?? pixelLimitFor(transform),
      kernel: opts.kernel ?? DEFAULT_DECODE.kernel,
      native: opts.nativeJpeg ?? true,
    };
    const concurrency = opts.concurrency ?? defaultConcurrency();
    this.exec =
      (opts.workers ?? 0) > 0
        ? new WorkerPool(opts.workers ?? 1, dataset, transform, decode, concurrency)
        : new InProcess(dataset, transform, decode, concurrency);
  }

  get batchesPerEpoch(): number {
    const n = this.dataset.length;
    return this.o.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch's order of dataset indices. */
  order(epoch: number): Int32Array {
    const a = Int32Array.from({ length: this.dataset.length }, (_, i) => i);
    if (this.o.shuffle) new Rng(this.o.seed).fork(`epoch:${epoch}`).shuffle(a);
    return a;
  }

  /** Images skipped so far (unique paths), with the reason. */
  skipped(epoch?: number): Skipped[] {
    const out = new Map<string, string>();
    for (const [e, m] of this.skippedByEpoch) if (epoch === undefined || e === epoch) for (const [p, r] of m) out.set(p, r);
    return [...out].map(([path, reason]) => ({ path, reason }));
  }

  async *epoch(e: number): AsyncIterableIterator<BatchOf<L>> {
    if (!Number.isInteger(e) || e < 0) throw expected('a non-negative integer', 'epoch', e);
    const order = this.order(e);
    const nb = this.batchesPerEpoch;
    const ahead = (this.o.prefetch ?? 2) + 1;
    const pending: Promise<BatchOf<L>>[] = [];
    let next = 0;
    const fill = (): void => {
      while (pending.length < ahead && next < nb) {
        const p = this.makeBatch(e, order, next++);
        p.catch(() => undefined); // surfaced when awaited below
        pending.push(p);
      }
    };
    fill();
    while (pending.length > 0) {
      const b = await (pending.shift() as Promise<BatchOf<L>>);
      fill();
      yield b;
    }
  }

  /** One batch by number, independent of any other (what a resumed run needs). */
  async batch(e: number, index: number): Promise<BatchOf<L>> {
    return this.makeBatch(e, this.order(e), index);
  }

  /**
   * Hands a batch's memory back for later batches to reuse: call it once nothing reads the batch
   * any more (its arrays will be overwritten). Optional; arrays that were transferred elsewhere
   * (detached) or are views into larger buffers are ignored.
   */
  recycle(b: BatchOf<L>): void {
    const arrays: (Float32Array | Uint8Array)[] = [b.x];
    if ('offset' in b) arrays.push(b.offset);
    for (const a of arrays) {
      const buf = a.buffer;
      if (!(buf instanceof ArrayBuffer) || buf.byteLength === 0 || a.byteOffset !== 0 || a.byteLength !== buf.byteLength) continue;
      this.give(this.spare, buf);
    }
  }

  async close(): Promise<void> {
    await this.exec.close();
  }

  private async makeBatch(e: number, order: Int32Array, b: number): Promise<BatchOf<L>> {
    const n = order.length;
    const start = b * this.batchSize;
    const real = Math.min(this.batchSize, n - start);
    const rows = this.o.padLast && !this.o.dropLast ? this.batchSize : real;
    const [h, w] = this.outputSize;
    const C = this.o.channels;
    const per = rows * this.views * C * h * w;
    const shared = (this.o.workers ?? 0) > 0;
    const xBytes = this.layout === 'nchw-f32' ? per * 4 : per;
    const offBytes = rows * this.views * C * 4;
    // Workers render into shared scratch memory (taken back below); otherwise straight into the batch.
    const xMem = shared
      ? this.take(this.spareShared, xBytes, () => new SharedArrayBuffer(xBytes))
      : this.take(this.spare, xBytes, () => new ArrayBuffer(xBytes));
    const offMem = shared
      ? this.take(this.spareShared, offBytes, () => new SharedArrayBuffer(offBytes))
      : this.take(this.spare, offBytes, () => new ArrayBuffer(offBytes));
    const t: BatchTarget = {
      layout: this.layout,
      x: this.layout === 'nchw-f32' ? new Float32Array(xMem) : new Uint8Array(xMem),
      offset: new Float32Array(offMem),
      channels: C,
      height: h,
      width: w,
      views: this.views,
    };
    const labels = new Int32Array(rows);
    const indices = new Int32Array(rows);
    const rowSize = this.views * C * h * w;
    let failed = 0;
    let unreadable = 0;
    await Promise.all(
      Array.from({ length: rows }, async (_, slot) => {
        const idx = order[(start + slot) % n] ?? 0;
        indices[slot] = idx;
        const reason = await this.render(e, idx, t, slot);
        if (reason === null) {
          labels[slot] = this.dataset.label(idx);
          return;
        }
        // Skipped, not replaced: another image in its place would carry another class's label.
        labels[slot] = UNREADABLE;
        t.x.fill(0, slot * rowSize, (slot + 1) * rowSize);
        t.offset.fill(0, slot * this.views * C, (slot + 1) * this.views * C);
        failed++;
        if (slot < real) unreadable++;
      }),
    );
    if (failed === rows && this.bad.size === n) {
      const first = this.skipped()[0];
      throw new UsageError(
        `Expected at least one readable image in the dataset but all ${n} failed (first: ${first?.path ?? '?'}: ${first?.reason ?? '?'})`,
      );
    }
    let x = t.x;
    let offset = t.offset;
    if (shared) {
      // One copy into memory this thread owns; the scratch goes back for the next batch.
      const xOut = this.take(this.spare, xBytes, () => new ArrayBuffer(xBytes));
      const offOut = this.take(this.spare, offBytes, () => new ArrayBuffer(offBytes));
      x = this.layout === 'nchw-f32' ? new Float32Array(xOut) : new Uint8Array(xOut);
      x.set(t.x);
      offset = new Float32Array(offOut);
      offset.set(t.offset);
      this.give(this.spareShared, xMem);
      this.give(this.spareShared, offMem);
    }
    const base = { labels, n: real, index: b, epoch: e, views: this.views, indices, unreadable };
    const N = rows * this.views;
    if (this.layout === 'nchw-f32') {
      const batch: Batch = { ...base, layout: 'nchw-f32', x: x as Float32Array, shape: [N, C, h, w] };
      return batch as BatchOf<L>;
    }
    const norm = this.transform.steps.find((s) => s.op === 'normalize');
    const batch: BatchU8 = {
      ...base,
      layout: 'nhwc-u8',
      x: x as Uint8Array,
      shape: [N, h, w, C],
      offset,
      mean: norm && norm.op === 'normalize' ? norm.mean : new Array<number>(C).fill(0),
      std: norm && norm.op === 'normalize' ? norm.std : new Array<number>(C).fill(1 / 255),
    };
    return batch as BatchOf<L>;
  }

  /** Renders dataset item idx into the target's slot; null, or why it cannot be read (remembered). */
  private async render(e: number, idx: number, t: BatchTarget, slot: number): Promise<string | null> {
    const reason = this.bad.get(idx) ?? (await this.exec.run(idx, new Rng(this.o.seed).fork(`sample:${e}:${idx}`).state, t, slot));
    if (reason === null) return null;
    this.bad.set(idx, reason);
    const m = this.skippedByEpoch.get(e) ?? new Map<string, string>();
    m.set(this.dataset.name(idx), reason);
    this.skippedByEpoch.set(e, m);
    return reason;
  }

  /** A spare buffer of this size from the pool, or a new one. */
  private take<B extends ArrayBufferLike>(pool: Map<number, B[]>, bytes: number, make: () => B): B {
    // Fresh batch memory costs page faults and zeroing (a 224 px batch of 32 is 19 MB); every
    // byte of a batch is written by rendering, so a recycled buffer needs no clearing.
    return pool.get(bytes)?.pop() ?? make();
  }

  private give<B extends ArrayBufferLike>(pool: Map<number, B[]>, buf: B): void {
    const list = pool.get(buf.byteLength) ?? [];
    if (list.includes(buf)) return;
    if (list.length < (this.o.prefetch ?? 2) + 2) list.push(buf);
    pool.set(buf.byteLength, list);
  }
}
