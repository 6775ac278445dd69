/**
 * Option parsers shared by the commands, the model options every model-taking command declares,
 * and the one-line rendering of commander's errors. Parsers throw InvalidArgumentError with
 * "Expected … but received …"; `errorLine` inserts the flag's name into that sentence.
 */
import { dirname, join } from 'node:path';
import { CommanderError, InvalidArgumentError, Option, type Command } from 'commander';
import type { ModelOptions } from '../zoo/index.js';
import { INPUT_KINDS, LRN_KINDS, POOL_MODES } from '../zoo/spec.js';
import { describe, UsageError } from '../util/errors.js';
import { MAX_COUNT } from '../util/limits.js';

function reject(what: string, value: string): never {
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

/**
 * A count that sizes threads, memory or a loop (threads, workers, batch, classes, pixels, steps per
 * run, channels shown): a positive integer up to MAX_COUNT. The machine's finer bounds are checked
 * by the command that knows what the count costs (src/util/limits.ts).
 */
export function count(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_COUNT) reject(`a positive integer up to ${MAX_COUNT}`, value);
  return n;
}

/** A count where 0 means "the default" (--threads 0: all cores; --workers 0: none). */
export function countOrZero(value: string): number {
  const n = nonNegativeInt(value);
  if (n > MAX_COUNT) reject(`a non-negative integer up to ${MAX_COUNT}`, value);
  return n;
}

/** The most --width may multiply every layer by: a 1024-wide VGG has 64 Ki-channel convolutions. */
export const MAX_WIDTH = 1024;

export function width(value: string): number {
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

/** What commander hands the action for the shared model flags. */
export interface ModelFlags {
  classes?: number;
  inputSize?: number;
  channels?: number;
  width?: number;
  dropout?: number;
  aux?: boolean;
  init?: ModelOptions['init'];
  lrn?: NonNullable<ModelOptions['lrn']>;
  pool?: NonNullable<ModelOptions['pool']>;
  input?: NonNullable<ModelOptions['input']>;
}

/** Declares the options every model-taking command accepts (defaults come from the model's spec). */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--classes <n>', 'output classes (default 1000)').argParser(count))
    .addOption(new Option('--input-size <px>', "square input side (default: the paper's)").argParser(count))
    .addOption(new Option('--channels <n>', 'input channels (default 3)').argParser(count))
    .addOption(new Option('--width <x>', 'width multiplier on every layer (default 1)').argParser(width))
    .addOption(new Option('--dropout <p>', "classifier dropout rate (default: the paper's)").argParser(rate))
    .addOption(new Option('--aux', 'build the auxiliary classifiers (GoogLeNet)'))
    .addOption(new Option('--init <scheme>', 'paper | kaiming (default paper)').argParser(choice(['paper', 'kaiming'] as const)))
    .addOption(new Option('--lrn <kind>', "LRN constants: paper | caffe | caffenet (Caffe's, norm after pool) (default: the model's)").argParser(choice(LRN_KINDS)))
    .addOption(new Option('--pool <mode>', "max-pool output size: floor | ceil (Caffe's) (default: the model's)").argParser(choice(POOL_MODES)))
    .addOption(new Option('--input <kind>', 'the pixels the network takes: torchvision (RGB, normalised) | caffe (BGR 0–255 less the mean; the BVLC models) (default torchvision)').argParser(choice(INPUT_KINDS)));
}

/** The flags the user gave, as the partial options `buildModel` fills in (absent keys stay absent). */
export function modelOptionsFrom(f: ModelFlags): Partial<ModelOptions> {
  const o: Partial<ModelOptions> = {};
  if (f.classes !== undefined) o.classes = f.classes;
  if (f.inputSize !== undefined) o.inputSize = f.inputSize;
  if (f.channels !== undefined) o.channels = f.channels;
  if (f.width !== undefined) o.width = f.width;
  if (f.dropout !== undefined) o.dropout = f.dropout;
  if (f.aux !== undefined) o.aux = f.aux;
  if (f.init !== undefined) o.init = f.init;
  if (f.lrn !== undefined) o.lrn = f.lrn;
  if (f.pool !== undefined) o.pool = f.pool;
  if (f.input !== undefined) o.input = f.input;
  return o;
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
  return msg.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}
