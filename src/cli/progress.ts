/**
 * Progress of long work (an epoch, an evaluation, a dataset scan). On a terminal: one line,
 * redrawn in place at most ~10 times a second. Elsewhere (CI logs, `| tee`, Docker): a plain
 * line every N seconds and a final one, never a carriage return, so logs stay readable.
 */

/** The part of a `tty.WriteStream` that is used; tests pass a fake. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean | undefined;
  columns?: number | undefined;
}

type Fields = Record<string, number | string>;

interface ProgressOptions {
  /** Items expected; without it there is no bar, percentage or ETA. */
  total?: number;
  label?: string;
  /** What is counted: `img`, `step`, ... (default `it`). */
  unit?: string;
  /** Default: process.stderr, so that stdout stays clean for results. */
  stream?: ProgressStream;
  /** Seconds between plain lines when the stream is not a terminal (default: ILSVRC_PROGRESS_SECONDS, else 10). */
  intervalSecs?: number;
  /** Milliseconds between redraws on a terminal (default 100). */
  redrawMs?: number;
  /** Time constant of the rate's exponential smoothing, in seconds (default 5). */
  smoothingSecs?: number;
  barWidth?: number;
  /** Items already done when this starts (a resumed epoch): not counted in the rate. */
  start?: number;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

// ---------------------------------------------------------------------------------------------
// Formatting (pure)

/** `MM:SS` under an hour, `H:MM:SS` above; `--:--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

/** `512.3 img/s`; below 0.1 items/s the inverse reads better: `12.5 s/img`. */
export function formatRate(perSecond: number, unit: string): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return `-- ${unit}/s`;
  if (perSecond < 0.1) return `${(1 / perSecond).toFixed(1)} s/${unit}`;
  return `${perSecond >= 10_000 ? perSecond.toFixed(0) : perSecond.toFixed(1)} ${unit}/s`;
}

/** `[#####.....]` with `width` cells inside the brackets. */
export function renderBar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.floor(f * width + 1e-9);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** Numbers to 4 significant digits (`0.4213`), integers as they are, strings untouched. */
export function formatField(value: number | string): string {
  if (typeof value === 'string') return value;
  if (Number.isInteger(value)) return String(value);
  if (!Number.isFinite(value)) return String(value);
  const a = Math.abs(value);
  return a >= 1e5 || a < 1e-3 ? value.toExponential(2) : value.toPrecision(4);
}

/** `91.2%` from 0.912. */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

interface LineState {
  label: string;
  done: number;
  total?: number;
  rate: number;
  unit: string;
  fields: Fields;
  barWidth: number;
  /** Set when finished: shown instead of the ETA. */
  elapsedSecs?: number;
}

/** `label [#####.....] 123/456 27% 512.3 img/s ETA 01:02 loss 0.4213 acc 91.2%` */
export function renderLine(s: LineState): string {
  const parts: string[] = [];
  if (s.label !== '') parts.push(s.label);
  const known = s.total !== undefined && s.total > 0;
  if (known) {
    const total = s.total as number;
    parts.push(renderBar(s.done / total, s.barWidth), `${s.done}/${total}`, `${Math.floor((100 * s.done) / total)}%`);
  } else {
    parts.push(`${s.done}`);
  }
  parts.push(formatRate(s.rate, s.unit));
  if (s.elapsedSecs !== undefined) parts.push(`in ${formatDuration(s.elapsedSecs)}`);
  else if (known) parts.push(`ETA ${formatDuration(s.rate > 0 ? ((s.total as number) - s.done) / s.rate : NaN)}`);
  for (const [k, v] of Object.entries(s.fields)) parts.push(`${k} ${formatField(v)}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------
// The live display

export class Progress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly total: number | undefined;
  private readonly label: string;
  private readonly unit: string;
  private readonly intervalMs: number;
  private readonly redrawMs: number;
  private readonly tauMs: number;
  private readonly barWidth: number;
  private readonly startTime: number;
  private readonly startDone: number;

  private done: number;
  private fields: Fields = {};
  private smoothed = 0;
  private sampleTime: number;
  private sampleDone: number;
  private lastOutput = -Infinity;
  private lastLine = '';
  private finished = false;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.now = options.now ?? Date.now;
    this.total = options.total;
    this.label = options.label ?? '';
    this.unit = options.unit ?? 'it';
    this.intervalMs = (options.intervalSecs ?? plainIntervalSecs()) * 1000;
    this.redrawMs = options.redrawMs ?? 100;
    this.tauMs = (options.smoothingSecs ?? 5) * 1000;
    this.barWidth = options.barWidth ?? 20;
    this.startTime = this.now();
    this.startDone = options.start ?? 0;
    this.done = this.startDone;
    this.sampleTime = this.startTime;
    this.sampleDone = this.startDone;
    // Plain output waits a full interval before its first line; a terminal shows the bar at once.
    if (!this.tty) this.lastOutput = this.startTime;
  }

  /** Smoothed items per second. */
  get rate(): number {
    return this.smoothed;
  }

  /** Records that `done` items are complete; `fields` (loss, accuracy...) are shown after the ETA. */
  update(done: number, fields?: Fields): void {
    if (this.finished) return;
    this.done = done;
    if (fields !== undefined) this.fields = { ...this.fields, ...fields };
    const t = this.now();
    this.sample(t);
    if (this.tty ? t - this.lastOutput >= this.redrawMs : t - this.lastOutput >= this.intervalMs) this.output(t);
  }

  /** `update(done + n)`. */
  increment(n = 1, fields?: Fields): void {
    this.update(this.done + n, fields);
  }

  /** Prints a message without garbling the bar. */
  log(message: string): void {
    if (this.tty && this.lastLine !== '' && !this.finished) {
      this.stream.write(`\r\x1b[K${message}\n${this.lastLine}`);
    } else {
      this.stream.write(`${message}\n`);
    }
  }

  /** Prints the final line (average rate and elapsed time) and ends it with a newline. */
  finish(fields?: Fields): void {
    if (this.finished) return;
    if (fields !== undefined) this.fields = { ...this.fields, ...fields };
    const t = this.now();
    const secs = (t - this.startTime) / 1000;
    const line = this.fit(
      renderLine({
        ...this.state(),
        rate: secs > 0 ? (this.done - this.startDone) / secs : this.smoothed,
        elapsedSecs: secs,
      }),
    );
    this.stream.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
    this.finished = true;
  }

  private state(): LineState {
    const s: LineState = {
      label: this.label,
      done: this.done,
      rate: this.smoothed,
      unit: this.unit,
      fields: this.fields,
      barWidth: this.barWidth,
    };
    if (this.total !== undefined) s.total = this.total;
    return s;
  }

  /**
   * Exponential smoothing weighted by elapsed time, so the rate means the same whether updates
   * come every batch or every second.
   */
  private sample(t: number): void {
    const dt = t - this.sampleTime;
    if (dt <= 0) return; // same millisecond: fold into the next sample
    const instant = ((this.done - this.sampleDone) * 1000) / dt;
    const first = this.sampleTime === this.startTime;
    this.smoothed = first ? instant : this.smoothed + (1 - Math.exp(-dt / this.tauMs)) * (instant - this.smoothed);
    this.sampleTime = t;
    this.sampleDone = this.done;
  }

  private output(t: number): void {
    this.lastOutput = t;
    this.lastLine = this.fit(renderLine(this.state()));
    // \x1b[K clears what a longer previous line left behind.
    this.stream.write(this.tty ? `\r${this.lastLine}\x1b[K` : `${this.lastLine}\n`);
  }

  /** On a terminal a wrapped line cannot be redrawn in place: cut it to the width. */
  private fit(line: string): string {
    const cols = this.stream.columns;
    return this.tty && cols !== undefined && cols > 1 && line.length >= cols ? line.slice(0, cols - 1) : line;
  }
}

/** Seconds between plain lines off a terminal: ILSVRC_PROGRESS_SECONDS (a positive number), else 10. */
function plainIntervalSecs(): number {
  const v = Number(process.env['ILSVRC_PROGRESS_SECONDS']);
  return Number.isFinite(v) && v > 0 ? v : 10;
}
