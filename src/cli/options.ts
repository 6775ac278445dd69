/**
 * Option parsers shared by the commands, the model options every model-taking command declares,
 * and the one-line rendering of commander's errors. Parsers throw InvalidArgumentError with
 * "Expected … but received …"; `errorLine` inserts the flag's name into that sentence.
 */
import { CommanderError, InvalidArgumentError, Option, type Command } from 'commander';
import {
  MODEL_OPTION_NAMES,
  MODEL_OPTIONS,
  optionFlag,
  optionHelp,
  type ModelOptionName,
  type ModelOptionSpec,
  type ModelOptions,
} from '../zoo/options.js';
import { describe, expected } from '../util/errors.js';
import { MAX_COUNT } from '../util/limits.js';
import { INPUT_LAYOUTS, type InputFlags } from '../trained/input.js';

export function reject(what: string, value: string): never {
  throw new InvalidArgumentError(`Expected ${what} but received ${describe(value)}`);
}

/** Any finite number JavaScript's Number() reads ("1e-3", "0x10", ".5"); "", blanks and "Infinity" are not. */
export function number(value: string): number | undefined {
  if (value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

export function positiveInt(value: string): number {
  const n = number(value);
  if (n === undefined || !Number.isSafeInteger(n) || n < 1) reject('a positive integer', value);
  return n;
}

/** The rule of a count, from `min` (1; or 0, where 0 means the default) up to MAX_COUNT. */
const countFits = (n: number, min: 0 | 1): boolean => Number.isSafeInteger(n) && n >= min && n <= MAX_COUNT;
const countExpected = (min: 0 | 1): string => `${min ? 'a positive' : 'a non-negative'} integer up to ${MAX_COUNT}`;

/**
 * A count that sizes threads, memory or a loop (threads, workers, batch, classes, pixels, steps per
 * run, channels shown): a positive integer up to MAX_COUNT. The machine's finer bounds are checked
 * by the command that knows what the count costs (src/util/limits.ts).
 */
export function count(value: string): number {
  const n = positiveInt(value);
  if (!countFits(n, 1)) reject(countExpected(1), value);
  return n;
}

/**
 * Counts given from code (`evaluate`, `visualize`), where no flag parser has read them, held to the
 * rule of `count` (`countOrZero` for the names in `zero`): a UsageError naming the flag.
 */
export function requireCounts(counts: Record<string, number | readonly number[] | undefined>, zero: readonly string[] = []): void {
  for (const [flag, value] of Object.entries(counts)) {
    const min = zero.includes(flag) ? 0 : 1;
    for (const n of typeof value === 'number' ? [value] : (value ?? []))
      if (!countFits(n, min)) throw expected(countExpected(min), flag, n);
  }
}

/** A count where 0 means "the default" (--threads 0: all cores; --workers 0: none). */
export function countOrZero(value: string): number {
  const n = nonNegativeInt(value);
  if (!countFits(n, 0)) reject(countExpected(0), value);
  return n;
}

/** The most --width may multiply every layer by: a 1024-wide VGG has 64 Ki-channel convolutions. */
const MAX_WIDTH = 1024;

function width(value: string): number {
  const n = positiveFloat(value);
  if (n > MAX_WIDTH) reject(`a positive number up to ${MAX_WIDTH}`, value);
  return n;
}

/** Seeds: the PRNG's state is one uint32. */
export function seed(value: string): number {
  const n = number(value);
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0xffffffff) reject('an integer in [0, 4294967295]', value);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = number(value);
  if (n === undefined || !Number.isSafeInteger(n) || n < 0) reject('a non-negative integer', value);
  return n;
}

export function nonNegativeFloat(value: string): number {
  const n = number(value);
  if (n === undefined || !(n >= 0)) reject('a non-negative number', value);
  return n === 0 ? 0 : n; // -0 → 0
}

export function positiveFloat(value: string): number {
  const n = number(value);
  if (n === undefined || !(n > 0)) reject('a positive number', value);
  return n;
}

/** A probability that leaves something: dropout's drop rate. */
export function rate(value: string): number {
  const n = number(value);
  if (n === undefined || !(n >= 0 && n < 1)) reject('a rate in [0, 1)', value);
  return n;
}

export function choice<T extends string>(values: readonly T[]): (value: string) => T {
  return (value) => {
    const found = values.find((v) => v === value);
    if (found === undefined) reject(`one of ${values.join(', ')}`, value);
    return found;
  };
}

/** ONNX opsets the exporter writes (17 for older tools such as Debian's onnx 1.12). */
export function opset(value: string): 17 | 18 {
  if (value.trim() === '17') return 17;
  if (value.trim() === '18') return 18;
  return reject('17 or 18', value);
}

/** A positive scale, as a number or a fraction ("1/255", "2/255", "0.5"). */
function inputScale(value: string): number {
  const parts = value.split('/');
  const [a, b] = parts.map(number);
  const n = parts.length === 1 ? a : parts.length === 2 && a !== undefined && b !== undefined && b !== 0 ? a / b : undefined;
  if (n === undefined || !(n > 0 && Number.isFinite(n))) reject('a positive number or fraction (1/255)', value);
  return n;
}

/** One value for every channel or one per channel (gray or RGB), comma-separated; `ok` says which numbers fit. */
function channelValues(what: string, ok: (n: number) => boolean): (value: string) => number[] {
  return (value) => {
    const ns = value.split(',').map(number);
    if (!(ns.length === 1 || ns.length === 3) || ns.some((n) => n === undefined || !ok(n)))
      reject(`1 or 3 comma-separated ${what} (one per channel, or one for all)`, value);
    return ns as number[];
  };
}

/**
 * How an ONNX classifier from elsewhere is fed, one entry per flag: where the channels are (read
 * from the graph unless given) and the pixel scaling its file cannot say. Each value fed is
 * (pixel × scale − mean) / std, pixel 0..255; none given: ImageNet's mean and std on [0, 1].
 */
const INPUT_OPTIONS: { readonly [K in keyof Required<InputFlags>]: { flag: string; help: string; parse: (v: string) => InputFlags[K] } } = {
  layout: {
    flag: '--layout <order>',
    help: `${INPUT_LAYOUTS.join(' | ')}: where an ONNX model's channels are (default: read from its graph)`,
    parse: choice(INPUT_LAYOUTS),
  },
  inputScale: {
    flag: '--input-scale <x>',
    help: 'pixel 0..255 × x is fed, before --mean and --std, e.g. 1/255 or 1 (default 1/255)',
    parse: inputScale,
  },
  mean: {
    flag: '--mean <m>',
    help: 'subtracted after --input-scale, e.g. 0.5 or 0.485,0.456,0.406 (default 0)',
    parse: channelValues('numbers', () => true),
  },
  std: {
    flag: '--std <s>',
    help: 'divides after --mean, e.g. 0.5 or 0.229,0.224,0.225 (default 1)',
    parse: channelValues('positive numbers', (n) => n > 0),
  },
};

/** Declares the input flags of a command that runs an ONNX model from elsewhere (predict, evaluate, export). */
export function addInputOptions(cmd: Command): Command {
  for (const e of Object.values(INPUT_OPTIONS)) cmd.addOption(new Option(e.flag, e.help).argParser(e.parse as (v: string) => unknown));
  return cmd;
}

/** The input flags among a command's flags, absent keys left out. */
export function inputFlagsFrom(f: InputFlags): InputFlags {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(INPUT_OPTIONS) as (keyof InputFlags)[]) if (f[k] !== undefined) out[k] = f[k];
  return out as InputFlags;
}

/** What commander hands the action for the shared model flags: the options, each as given. */
export type ModelFlags = Partial<ModelOptions>;

/** The parser of each kind of model option's value (a switch takes none). */
function modelOptionParser(name: ModelOptionName): ((value: string) => unknown) | undefined {
  const e: ModelOptionSpec = MODEL_OPTIONS[name];
  switch (e.kind) {
    case 'count':
      return count;
    case 'width':
      return width;
    case 'rate':
      return rate;
    case 'choice':
      return choice(e.values ?? []);
    case 'switch':
      return undefined;
  }
}

/** Declares the options every model-taking command accepts, one flag per entry of MODEL_OPTIONS. */
export function addModelOptions(cmd: Command): Command {
  for (const name of MODEL_OPTION_NAMES) {
    const e: ModelOptionSpec = MODEL_OPTIONS[name];
    const opt = new Option(`${optionFlag(name)}${e.arg === undefined ? '' : ` <${e.arg}>`}`, optionHelp(name));
    const parse = modelOptionParser(name);
    cmd.addOption(parse ? opt.argParser(parse) : opt);
  }
  return cmd;
}

/** The flags the user gave, as the partial options `buildModel` fills in (absent keys stay absent). */
export function modelOptionsFrom(f: ModelFlags): Partial<ModelOptions> {
  return splitModelFlags(f).model;
}

/** A command's flags parted into the model options given and the rest. */
export function splitModelFlags<F extends ModelFlags>(f: F): { model: Partial<ModelOptions>; rest: Omit<F, ModelOptionName> } {
  const model: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) {
    if (!(MODEL_OPTION_NAMES as string[]).includes(k)) rest[k] = v;
    else if (v !== undefined) model[k] = v;
  }
  return { model: model as Partial<ModelOptions>, rest: rest as Omit<F, ModelOptionName> };
}

/** The long name in commander's flags ("-o, --output <file>" → "--output"). */
function flagName(flags: string): string {
  const words = flags.split(/[ ,|]+/);
  return words.find((w) => w.startsWith('--')) ?? words[0] ?? flags;
}

/**
 * One line for a commander error. An invalid option value becomes
 * "Expected a positive integer for --classes but received \"2.5\""; other messages lose their
 * "error: " prefix, and hints on further lines ("Did you mean …?") join the first.
 */
export function errorLine(err: CommanderError): string {
  const msg = err.message.replace(/^error: /, '');
  const m =
    /^option '([^']*)' argument '[\s\S]*' is invalid\. ([\s\S]*)$/.exec(msg) ??
    /^command-argument value '[\s\S]*' is invalid for argument '([^']*)'\. ([\s\S]*)$/.exec(msg);
  if (m) {
    const name = flagName(m[1] ?? '');
    const inner = m[2] ?? '';
    const sentence = /^Expected ([\s\S]*?) but received ([\s\S]*)$/.exec(inner);
    return sentence ? `Expected ${sentence[1]} for ${name} but received ${sentence[2]}` : `${name}: ${inner}`;
  }
  return msg
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
}
