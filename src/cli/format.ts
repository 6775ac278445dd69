/** Plain-text tables and number formats for the commands' human output (JSON output skips this). */

/** 138357544 → "138,357,544". */
export function thousands(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Multiply–accumulates in billions, three decimals as the papers' tables give them. */
export function gmacs(macs: number): string {
  return (macs / 1e9).toFixed(3);
}

/** [1024, 7, 7] → "1024×7×7". */
export function shape(dims: readonly number[]): string {
  return dims.join('×');
}

type Align = 'left' | 'right';

/**
 * Columns padded to their widest cell, two spaces apart, a rule under the header. Columns whose
 * align is "right" (numbers) are right-aligned; `align` as a number k: the first k columns left (the
 * names), the rest right. Trailing spaces are trimmed.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[], aligned: readonly Align[] | number = []): string {
  const align = typeof aligned === 'number' ? header.map((_, i): Align => (i < aligned ? 'left' : 'right')) : aligned;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    widths
      .map((w, i) => {
        const c = cells[i] ?? '';
        return align[i] === 'right' ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}
