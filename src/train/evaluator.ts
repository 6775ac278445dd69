/**
 * The forward passes of the weights a session trains, apart from training: the eval graph (loss, hit
 * counts and logits without dropout, the weights fed with the batch) and an inference model that
 * holds the weights as initializers (validation, export).
 */
import type { ModelOptions } from '../zoo/index.js';
import { buildModel } from '../zoo/index.js';
import { exportInferenceModel } from '../zoo/export.js';
import { decodeModel } from '../onnx/proto.js';
import { createDeviceSession } from '../runtime/device.js';
import { tensor, type OrtSession, type SessionOptions } from '../runtime/ort.js';
import { batchFeeds, metricsOf, output, type Compile, type Weights } from './session-state.js';
import type { StepBatch, StepMetrics } from './session-types.js';

export class Evaluator {
  /**
   * runInference's session, dropped as soon as the weights change (weightsChanged): it holds its own
   * copy of the weights, which should not sit in memory through training.
   */
  private inference: Promise<OrtSession> | undefined;

  constructor(
    private readonly w: Weights,
    private readonly compile: Compile,
    private readonly model: { model: string; modelOptions: Partial<ModelOptions> },
    /** One image's [C, H, W]. */
    private readonly imageShape: readonly number[],
    private readonly sessionOptions: SessionOptions,
  ) {}

  /** Loss, hit counts and logits without dropout. */
  async runEvalStep(batch: StepBatch): Promise<StepMetrics & { logits: Float32Array }> {
    const { tg, session } = await this.compile('eval', batch.labels.length);
    const feeds = batchFeeds(tg, batch);
    this.w.feed(tg, feeds, false);
    const out = await session.run(feeds);
    return { ...metricsOf(out, batch), logits: output(out, 'logits') };
  }

  /**
   * Logits of `rows` images through an inference model of the current weights. The weights are its
   * initializers, so ONNX Runtime can pre-pack them (blocked convolutions on the CPU) and nothing
   * crosses the boundary but the images: faster than runEvalStep for validation. The session is
   * built on first use and dropped when the weights change.
   */
  async runInference(x: Float32Array, rows: number): Promise<Float32Array> {
    this.inference ??= createDeviceSession(decodeModel(this.exportModel()), this.sessionOptions);
    const session = await this.inference;
    const out = await session.run({ input: tensor('float32', x, [rows, ...this.imageShape]) });
    return output(out, 'logits');
  }

  /** ONNX bytes for inference: trained weights as initializers, no dropout, no auxiliary heads. */
  exportModel(opset = 18): Uint8Array {
    const built = buildModel(this.model.model, { ...this.model.modelOptions, aux: false }, { training: false });
    return exportInferenceModel(built, this.w.params, { opset: opset === 17 ? 17 : 18 });
  }

  /** The weights are about to change: the inference model's copy of them goes now. */
  weightsChanged(): void {
    const old = this.inference;
    this.inference = undefined;
    if (old) void old.then((x) => x.release()).catch(() => undefined);
  }

  async release(): Promise<void> {
    const inference = this.inference;
    this.inference = undefined;
    if (inference) await (await inference).release();
  }
}
