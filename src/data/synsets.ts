/**
 * Synsets and their names: the `n01440764 tench, Tinca tinca` words files, the name a class gets
 * from them, and ImageNet-1k's 1 000 classes in the standard order (sorted by synset id, as Caffe,
 * torchvision and the ONNX model zoo index them), read from the data file shipped with the package
 * (data/imagenet-1k/, whose README names its source).
 */
import { fileURLToPath } from 'node:url';
import { UsageError } from '../util/errors.js';
import { readTextBounded } from '../util/read.js';

export const WNID = /^n\d{8}$/;

/** A class's name: its synset id and the first of its words (`n02123045 tabby`), or the id alone. */
export function className(wnid: string, words: string | undefined): string {
  return `${wnid} ${words?.split(',')[0]?.trim() ?? ''}`.trim();
}

/**
 * Sets `key` → `value` from line `line` of `file`; the same key with another value is refused,
 * naming both lines and values (the same value again says nothing new and is taken once).
 */
export function setOnce(
  out: Map<string, string>,
  lines: Map<string, number>,
  key: string,
  value: string,
  line: number,
  file: string,
  what: string,
): void {
  const before = out.get(key);
  if (before !== undefined && before !== value) {
    const both = `${JSON.stringify(before)} on line ${lines.get(key)} and ${JSON.stringify(value)} on line ${line}`;
    throw new UsageError(`Expected one ${what} in ${file} but ${key} is ${both}`);
  }
  if (before === undefined) lines.set(key, line);
  out.set(key, value);
}

/** `n01440764 tench, Tinca tinca` lines → wnid → words, in file order. */
export function parseWords(text: string, file: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, k) => {
    if (!line.trim()) return;
    const m = /^(\S+)\s*(.*)$/.exec(line.trim());
    if (!m || !WNID.test(m[1] ?? ''))
      throw new UsageError(`Expected 'n######## words' on line ${k + 1} of ${file} but received ${JSON.stringify(line.slice(0, 40))}`);
    setOnce(out, lines, m[1] ?? '', m[2] ?? '', k + 1, file, 'name per synset');
  });
  if (out.size === 0) throw new UsageError(`Expected synset lines ('n01440764 tench, Tinca tinca') in ${file} but it is empty`);
  return out;
}

/** The package's copy, found from dist/src/data/ as from src/data/ (both three levels below the root). */
const IMAGENET_1K_FILE = fileURLToPath(new URL('../../../data/imagenet-1k/synset_words.txt', import.meta.url));

let imagenet: { wnids: string[]; words: Map<string, string> } | undefined;

/** ImageNet-1k's synsets in class order and their words; read once. */
export function imagenet1k(): { wnids: readonly string[]; words: ReadonlyMap<string, string> } {
  if (imagenet === undefined) {
    const words = parseWords(readTextBounded(IMAGENET_1K_FILE, 'the ImageNet-1k class list'), IMAGENET_1K_FILE);
    const wnids = [...words.keys()];
    // A damaged installation, not a user's mistake.
    if (wnids.length !== 1000 || wnids.some((w, k) => k > 0 && w <= (wnids[k - 1] ?? '')))
      throw new Error(`${IMAGENET_1K_FILE} does not hold 1000 synsets in sorted order`);
    imagenet = { wnids, words };
  }
  return imagenet;
}

/** ImageNet-1k's class names (`n01440764 tench` …), in class order. */
export function imagenet1kClasses(): string[] {
  const { wnids, words } = imagenet1k();
  return wnids.map((w) => className(w, words.get(w)));
}
