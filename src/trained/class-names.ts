/**
 * Which names a model's classes have, decided in one place for predict, evaluate, visualize and
 * export: the file's own (its metadata, or a classes.json beside it), else `--labels`, else
 * ImageNet-1k's built-in list for a model of exactly 1 000 classes (said once on stderr), else none.
 */
import { imagenet1kClasses } from '../data/synsets.js';
import { UsageError } from '../util/errors.js';
import { readTextBounded } from '../util/read.js';

/** Class names, one per line (BVLC's synset_words.txt: "n01440764 tench, Tinca tinca" keeps the whole line). */
export function readLabels(file: string, flag = '--labels'): string[] {
  const lines = readTextBounded(file, `the class names of ${flag}`)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (!lines.length) throw new UsageError(`Expected one class name per line in ${flag} ${file} but it is empty`);
  return lines;
}

/** Files already said to take the built-in names: one process says so once per file. */
const noted = new Set<string>();

/**
 * The names of `classes` classes of `file`: `own` (read from `ownFrom`) when it has them, else
 * those of the `labels` file, else ImageNet-1k's for 1 000 classes. A count that does not match
 * is refused naming where the names came from; `--labels` that contradicts the file's own names too.
 */
export function modelClassNames(
  file: string,
  classes: number,
  own: string[] | undefined,
  ownFrom: string,
  labels?: string,
): string[] | undefined {
  const given = labels === undefined ? undefined : readLabels(labels);
  const check = (names: string[], from: string): string[] => {
    if (names.length !== classes)
      throw new UsageError(`Expected ${classes} class names in ${from} (the classes of ${file}) but received ${names.length}`);
    return names;
  };
  if (own !== undefined) {
    check(own, ownFrom);
    if (given && labels !== undefined) check(given, `--labels ${labels}`);
    const k = given?.findIndex((n, i) => n !== own[i]) ?? -1;
    if (given && k >= 0) {
      throw new UsageError(
        `Expected --labels ${labels} to agree with the class names in ${ownFrom} but class ${k} is ${JSON.stringify(own[k])} there and ${JSON.stringify(given[k])} in --labels`,
      );
    }
    return own;
  }
  if (given && labels !== undefined) return check(given, `--labels ${labels}`);
  if (classes !== 1000) return undefined;
  if (!noted.has(file)) {
    noted.add(file);
    process.stderr.write(`ilsvrc: note: ${file} carries no class names: using ImageNet-1k's (--labels FILE gives others)\n`);
  }
  return imagenet1kClasses();
}

/**
 * The names evaluate shows: the data's, each replaced by the model's where the data names the class
 * only by what the model's name starts with (a folder `n01440764` for the model's `n01440764 tench`).
 */
export function shownNames(data: readonly string[], model: readonly string[] | undefined): string[] {
  return data.map((d, i) => {
    const m = model?.[i];
    return m !== undefined && m !== d && m.startsWith(`${d} `) ? m : d;
  });
}

/**
 * The class `query` names: an index, a whole name, or the words of a name after its synset id
 * (`tabby` for `n02123045 tabby`) when only one class has them. Refused naming a few of the names.
 */
export function classIndex(query: string, names: readonly string[] | undefined, flag: string): number {
  const whole = names?.indexOf(query) ?? -1;
  if (whole >= 0) return whole;
  const byWords = (names ?? []).flatMap((n, i) => (n.slice(n.indexOf(' ') + 1) === query && /^n\d{8} /.test(n) ? [i] : []));
  if (byWords.length === 1) return byWords[0]!;
  if (/^\d+$/.test(query)) return Number(query);
  const shown = names ? `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` … (${names.length} names)` : ''}` : '(no class names)';
  throw new UsageError(`Expected a class index or one of ${shown} for ${flag} but received ${JSON.stringify(query)}`);
}
