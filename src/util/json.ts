import { UsageError } from './errors.js';

/**
 * Duplicate keys in JSON text. `JSON.parse` keeps the last of two equal keys without a word, so a
 * file that says two things about one name would be read as saying only the second.
 */

interface DuplicateKey {
  /** Where the key sits: the keys leading to it, outermost first, then the key. */
  path: string[];
  /** The two values, as the text writes them. */
  first: string;
  second: string;
}

interface Frame {
  object: boolean;
  /** Each key's value text, as far as it has been read. */
  values: Map<string, string>;
  key?: string;
  valueStart?: number;
}

const STRING = /"(?:[^"\\]|\\.)*"/y;
const PRIMITIVE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/** The first key that an object of `text` repeats, or undefined. `text` must be valid JSON (parse it first). */
export function duplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  let dup: DuplicateKey | undefined;
  /** A value of the innermost object has ended at `end`. */
  const settle = (end: number): void => {
    const top = stack[stack.length - 1];
    if (!top?.object || top.key === undefined || top.valueStart === undefined) return;
    const value = text.slice(top.valueStart, end);
    const before = top.values.get(top.key);
    const path = stack.flatMap((f) => (f.key === undefined ? [] : [f.key]));
    if (before !== undefined && dup === undefined) dup = { path, first: before, second: value };
    top.values.set(top.key, value);
    delete top.key;
    delete top.valueStart;
  };
  for (let i = 0; i < text.length && dup === undefined;) {
    const c = text[i]!;
    const top = stack[stack.length - 1];
    if (c === '{' || c === '[') {
      if (top?.object && top.key !== undefined) top.valueStart ??= i;
      stack.push({ object: c === '{', values: new Map() });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
      settle(i);
    } else if (c === '"') {
      STRING.lastIndex = i;
      const m = STRING.exec(text);
      if (!m) return undefined; // not valid JSON: the parser has said so already
      i += m[0].length;
      if (top?.object && top.key === undefined) top.key = JSON.parse(m[0]) as string;
      else {
        if (top?.object) top.valueStart ??= i - m[0].length;
        settle(i);
      }
    } else if (c === ':' || c === ',' || /\s/.test(c)) {
      i++;
    } else {
      PRIMITIVE.lastIndex = i;
      const m = PRIMITIVE.exec(text);
      if (!m) return undefined;
      if (top?.object) top.valueStart ??= i;
      i += m[0].length;
      settle(i);
    }
  }
  return dup;
}

/** A repeated key as one line's worth: `"a"."b" is given twice: 1 and 2`. */
export function describeDuplicate(d: DuplicateKey): string {
  const cut = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}...` : s);
  return `${d.path.map((k) => JSON.stringify(k)).join('.')} is given twice: ${cut(d.first)} and ${cut(d.second)}`;
}

/**
 * JSON text from a user's file, each key once: `where` says where it was found ("in the \"ilsvrc\"
 * metadata of run/last.safetensors") in the one-line refusal of text that does not parse or
 * repeats a key.
 */
export function parseJson(text: string, where: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`Expected JSON ${where} but it does not parse: ${(e as Error).message}`);
  }
  const dup = duplicateKey(text);
  if (dup) throw new UsageError(`Expected each key once ${where} but ${describeDuplicate(dup)}`);
  return json;
}
