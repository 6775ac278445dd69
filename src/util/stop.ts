/**
 * A request to stop, polled by every long loop (training runs, validation, evaluation, predicting
 * over many files, visualize's search, imports of large files). The CLI arms it on SIGINT/SIGTERM:
 * the first signal asks the loops to write what they promised and return; a second one exits at
 * once (130). A loop polls `requested` at least every second of its work — per batch, per file,
 * per tensor — so a stop is acted on within a second, not when a long phase ends.
 */
import { UsageError } from './errors.js';

export class StopSignal {
  #reason: string | undefined;
  /** Waits in progress (`race`), woken by the request; each removes itself when its work settles. */
  readonly #waiting = new Set<() => void>();

  /** True once a stop was asked for. */
  get requested(): boolean {
    return this.#reason !== undefined;
  }

  /** What asked for the stop ("SIGTERM"), or undefined. */
  get reason(): string | undefined {
    return this.#reason;
  }

  request(reason: string): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    for (const wake of [...this.#waiting]) wake();
    this.#waiting.clear();
  }

  /** For loops that have nothing to save: throws `Stopped` once a stop was asked for. */
  throwIfRequested(what: string): void {
    if (this.#reason !== undefined) throw new Stopped(`${what} stopped by ${this.#reason}`);
  }

  /**
   * `work`'s value, or `Stopped` as soon as a stop is asked for — for waits that can be long (a
   * batch of large images). The work itself goes on; its outcome is dropped.
   */
  race<T>(work: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#reason !== undefined) {
        work.catch(() => undefined); // dropped
        reject(new Stopped(`${what} stopped by ${this.#reason}`));
        return;
      }
      // Removed once the work settles: a long run races every batch and must not keep them alive.
      const wake = (): void => reject(new Stopped(`${what} stopped by ${this.#reason}`));
      this.#waiting.add(wake);
      work.then(
        (v) => {
          this.#waiting.delete(wake);
          resolve(v);
        },
        (e: unknown) => {
          this.#waiting.delete(wake);
          reject(e);
        },
      );
    });
  }

  /** `source`'s items, polling before each and racing each wait (`race`): throws `Stopped` within a wait of a stop. */
  async *each<T>(source: AsyncIterable<T>, what: string): AsyncGenerator<T> {
    const it = source[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const r = await this.race(it.next(), what);
        if (r.done === true) {
          finished = true;
          return;
        }
        yield r.value;
      }
    } finally {
      // Stopped or left early: end the source without waiting for the item it is still making.
      if (!finished) it.return?.().catch(() => undefined);
    }
  }
}

/**
 * A loop gave up because the user asked it to stop. The CLI prints its one line and exits 130
 * (128 + SIGINT, as shells report an interrupted command).
 */
export class Stopped extends UsageError {
  override readonly name: string = 'Stopped';
}

/** Whether SIGINT or SIGTERM came while a command was armed (stopOnSignals): what is left running is not wanted. */
let signalled = false;
export function wasSignalled(): boolean {
  return signalled;
}

/** A signal that is never raised, for library callers that do not stop. */
export const NEVER: StopSignal = new StopSignal();

/**
 * Arms `stop` on SIGINT and SIGTERM for the duration of a command: the first signal requests the
 * stop (and calls `onFirst`, e.g. to say what will be written); a second one exits 130 at once.
 * Returns the function that disarms it.
 */
export function stopOnSignals(stop: StopSignal, onFirst: (signal: NodeJS.Signals) => void = () => {}): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    if (stop.requested) process.exit(130);
    signalled = true;
    stop.request(signal);
    onFirst(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
