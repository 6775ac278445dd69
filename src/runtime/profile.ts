/**
 * ONNX Runtime's profiler output (SessionOptions.profile: a Chrome trace JSON per session), read
 * back as kernel time per op type: what scripts/bench-train --profile and scripts/profile-step show.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

interface TraceEvent {
  cat?: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; provider?: string };
}

/** Reads and deletes the trace a session profiled with `prefix` wrote (after endProfiling). */
export function takeProfile(prefix: string): TraceEvent[] {
  const dir = path.dirname(prefix);
  const file = readdirSync(dir).find((f) => f.startsWith(path.basename(prefix)));
  if (!file) throw new Error(`no ONNX Runtime profile written under ${prefix}*`);
  const events = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as TraceEvent[];
  rmSync(path.join(dir, file), { force: true });
  return events;
}

/** The session runs (model_run events), in order. */
export function profileRuns(events: readonly TraceEvent[]): TraceEvent[] {
  return events.filter((e) => e.name === 'model_run').sort((a, b) => a.ts - b.ts);
}

/**
 * Kernel time (µs) per key, most first, from run `skip` on (0-based: 1 leaves out a warm-up run).
 * Loop nodes are left out: their body's nodes are listed one by one.
 */
export function kernelTime(
  events: readonly TraceEvent[],
  skip: number,
  key: (e: TraceEvent) => string,
): { total: number; by: [string, number][] } {
  const from = profileRuns(events)[skip]?.ts ?? 0;
  const by = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < from || e.args?.op_name === 'Loop') continue;
    const k = key(e);
    by.set(k, (by.get(k) ?? 0) + e.dur);
    total += e.dur;
  }
  return { total, by: [...by.entries()].sort((a, b) => b[1] - a[1]) };
}
