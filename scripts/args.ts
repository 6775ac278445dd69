/** Command-line options of the benchmark scripts: `--name value`. */
import { number } from '../src/cli/options.js';

/** The value after `--name`, or `fallback` when the option is absent. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** An integer option of at least `min`; anything else ends the script with a line naming the option (exit 2). */
export function intArg(name: string, fallback: number, min = 1): number {
  const text = arg(name, String(fallback));
  const n = number(text) ?? NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    process.stderr.write(`Expected an integer ≥ ${min} for --${name} but received "${text}"\n`);
    process.exit(2);
  }
  return n;
}
