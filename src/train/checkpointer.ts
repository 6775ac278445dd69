/**
 * Where a run's checkpoints go and when they are written: `last.safetensors` at each epoch's end,
 * every N steps and on a stop; `best.safetensors` by validation top-1. Weights no loss has been
 * computed from yet wait as `.last.safetensors.pending` until the next step's loss, computed from
 * exactly those weights, is finite; weights that are not all finite are never written.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import type { RunState } from './run-state.js';
import type { TrainingState } from './session-types.js';
import { UsageError, userFileError } from '../util/errors.js';
import { removeFile, renameFile, withPath } from '../util/fsx.js';

/** The files of a run folder. */
export const FILES = {
  last: 'last.safetensors',
  best: 'best.safetensors',
  jsonl: 'metrics.jsonl',
  csv: 'metrics.csv',
  classes: 'classes.json',
} as const;

/** What every checkpoint of a run says alike: the model, its classes and view, the data and the run config. */
export type RunMeta = Omit<CheckpointMeta, 'format' | 'savedAt' | 'step' | 'rng' | 'progress' | 'epoch' | 'batchInEpoch' | 'metrics'>;

interface SaveOptions {
  metrics?: Record<string, number>;
  /** A snapshot of the session already taken (best and last of one epoch's end share it). */
  snap?: TrainingState;
  /** Beside the file, until a finite loss vouches for it (commitPending). */
  pending?: boolean;
}

export class Checkpointer {
  /** The step of the newest checkpoint on disk that is known good (for the divergence message). */
  saved: number | undefined;
  private pending: number | undefined;

  constructor(
    readonly out: string,
    private readonly about: RunMeta,
    saved: number | undefined,
    private readonly session: { snapshot(): Promise<TrainingState> },
    private readonly events: { flush(): void },
  ) {
    this.saved = saved;
  }

  /** A run that went non-finite: what, and which checkpoint is left to go back to. */
  diverged(what: string): UsageError {
    const last = join(this.out, FILES.last);
    const good = this.saved !== undefined && existsSync(last);
    const kept = good ? `the last good checkpoint is ${last} (step ${this.saved})` : 'no checkpoint had been written';
    return new UsageError(`${what}; stopped, ${kept} — try a lower --lr`);
  }

  /**
   * Writes `file` of the session's weights (`snap`: a snapshot already taken) at the run's state.
   * Never one whose parameters or optimizer state are not all finite.
   */
  async save(file: string, st: RunState, o: SaveOptions = {}): Promise<TrainingState> {
    const s = o.snap ?? (await this.session.snapshot());
    const refuse = (bad: string) => this.diverged(`Expected finite weights at step ${s.step} but ${bad} is not`);
    this.events.flush(); // every event up to this step is on disk before the checkpoint that a resume starts from
    const target = o.pending ? pendingPath(this.out, file) : join(this.out, file);
    const at = { progress: st.saved(), epoch: st.epoch, batchInEpoch: st.inEpoch };
    const meta = { ...this.about, ...at, ...(o.metrics ? { metrics: o.metrics } : {}) };
    withPath(join(this.out, file), () => saveCheckpoint(target, s, meta, refuse), o.pending ? target : undefined);
    if (!o.pending && file === FILES.last) this.saved = s.step;
    return s;
  }

  /** The every-N-steps checkpoint: weights no loss has vouched for yet, so written pending. */
  async savePending(st: RunState): Promise<void> {
    st.keepTime();
    await this.save(FILES.last, st, { pending: true });
    this.pending = st.step;
  }

  /** A finite loss from the pending checkpoint's weights: it becomes last.safetensors. */
  commitPending(): void {
    if (this.pending === undefined) return;
    renameFile(pendingPath(this.out, FILES.last), join(this.out, FILES.last));
    this.saved = this.pending;
    this.pending = undefined;
  }

  /** The epoch's end: best (when `improved`) and last of one snapshot, which supersede a pending one. */
  async saveEpoch(st: RunState, metrics: Record<string, number>, improved: boolean): Promise<void> {
    const snap = await this.session.snapshot();
    if (improved) await this.save(FILES.best, st, { metrics, snap });
    await this.save(FILES.last, st, { metrics, snap });
    this.pending = undefined;
  }

  /**
   * A stop: nothing of the step being prepared, nor of a validation cut short, has been applied,
   * so last.safetensors is at the last whole step. One taken after the epoch's last step makes
   * --resume validate that epoch before going on.
   */
  async saveStopped(st: RunState, log: (message: string) => void): Promise<void> {
    if (st.inEpoch === st.stepsPerEpoch) log(`validation of epoch ${st.epoch + 1} stopped; --resume validates it again`);
    st.keepTime();
    await this.save(FILES.last, st);
  }
}

/** A failure of the run as the user sees it: their disk or permissions name the file, and that the last checkpoint is intact. */
export function runFailure(e: unknown, out: string, saved: number | undefined): unknown {
  const user = userFileError(e);
  if (!user) return e;
  const last = join(out, FILES.last);
  const kept = saved !== undefined ? `the last checkpoint ${last} (step ${saved}) is intact` : 'no checkpoint had been written';
  return new UsageError(`${user.message}; stopped, ${kept}`);
}

/** Removes a pending checkpoint no loss vouched for (a folder there is the user's: the write has said so). */
export function discardPending(out: string): void {
  removeFile(pendingPath(out, FILES.last));
}

/** Where a checkpoint waits until a finite loss from its weights vouches for it. */
function pendingPath(out: string, file: string): string {
  return join(out, `.${file}.pending`);
}
