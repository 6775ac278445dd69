/**
 * The options every model takes, as one table. The CLI's flags and their parsers and --help text
 * (src/cli/options.ts), the `ModelOptions` type, `modelOptions`' defaults and checks
 * (src/zoo/index.ts) and the field checks of ilsvrc files (src/train/checkpoint.ts) are read
 * from it: a new option is one entry here and its use in the graphs.
 */
import { orList } from '../util/errors.js';

export const LRN_KINDS = ['paper', 'caffe', 'caffenet'] as const;
export const POOL_MODES = ['floor', 'ceil'] as const;
export const INPUT_KINDS = ['torchvision', 'caffe'] as const;
const INIT_SCHEMES = ['paper', 'kaiming'] as const;

/** What a value must be: a positive integer, a positive number, a rate in [0, 1), a switch, or one of `values`. */
type OptionKind = 'count' | 'width' | 'rate' | 'switch' | 'choice';

export interface ModelOptionSpec {
  kind: OptionKind;
  /** The flag's value placeholder ("px" → `--input-size <px>`); a switch has none. */
  arg?: string;
  /** --help's text, before the choices and the default. */
  help: string;
  values?: readonly string[];
  /** A word on some of the values, shown after each in --help. */
  notes?: Readonly<Record<string, string>>;
  /** When not given: this value. */
  default?: number | string | boolean;
  /** When not given: this field of the model's spec. */
  fromSpec?: 'defaultInput' | 'dropout';
  /**
   * When not given the option stays absent and the model decides; this says what it then is
   * (--help). When it is one of `values`, that value is dropped: the default has one form.
   */
  absent?: string;
  /** Given, the network departs from its paper's definition (summary and import name it). */
  variant?: true;
  /** Filled in, yet may be undefined: options read off a foreign ONNX graph cannot know it. */
  mayBeUnknown?: true;
  /** Written by every ilsvrc file since the first format, so required when a file is read. */
  inEveryFile?: true;
  /** The largest value a file may record (more is damage, not a setting). */
  fileMax?: number;
}

/** In the order options are recorded. */
export const MODEL_OPTIONS = {
  classes: { kind: 'count', arg: 'n', help: 'output classes', default: 1000, inEveryFile: true },
  // No image the pipeline decodes is larger than 16383 px a side (sharp's default limit).
  inputSize: { kind: 'count', arg: 'px', help: 'square input side', fromSpec: 'defaultInput', inEveryFile: true, fileMax: 16383 },
  channels: { kind: 'count', arg: 'n', help: 'input channels', default: 3, inEveryFile: true },
  width: { kind: 'width', arg: 'x', help: 'width multiplier on every layer', default: 1, inEveryFile: true },
  // A file with the paper's dropout may have no "dropout" key (JSON drops undefined).
  dropout: { kind: 'rate', arg: 'p', help: 'classifier dropout rate', fromSpec: 'dropout', mayBeUnknown: true },
  aux: { kind: 'switch', help: 'build the auxiliary classifiers (GoogLeNet)', default: false },
  // torchvision's dropout_aux; the paper's 0.7 is written where the heads are built.
  auxDropout: { kind: 'rate', arg: 'p', help: 'dropout rate of the auxiliary classifiers (with --aux)', absent: "the paper's" },
  // "paper": each paper's initialisation; "kaiming": He-normal weights, zero biases (trains faster at small width).
  init: { kind: 'choice', arg: 'scheme', help: '', values: INIT_SCHEMES, default: 'paper' },
  // "paper": AlexNet's k = 2 with α = 1e-4 on the plain sum; "caffe": the BVLC models' k = 1 with
  // α = 1e-4 divided by n; "caffenet": Caffe's constants with each norm after its pool.
  lrn: {
    kind: 'choice',
    arg: 'kind',
    help: 'LRN constants',
    values: LRN_KINDS,
    notes: { caffenet: "Caffe's, norm after pool" },
    absent: "the model's",
    variant: true,
  },
  // "floor": the papers' formula; "ceil": Caffe's only mode.
  pool: {
    kind: 'choice',
    arg: 'mode',
    help: 'max-pool output size',
    values: POOL_MODES,
    notes: { ceil: "Caffe's" },
    absent: "the model's",
    variant: true,
  },
  // "torchvision": RGB, (x/255 − mean)/std, as the pipeline feeds; "caffe": the graph turns that into
  // BGR in 0–255 less Caffe's ImageNet mean as its first layer.
  input: {
    kind: 'choice',
    arg: 'kind',
    help: 'the pixels the network takes',
    values: INPUT_KINDS,
    notes: { torchvision: 'RGB, normalised', caffe: 'BGR 0–255 less the mean; the BVLC models' },
    absent: 'torchvision',
    variant: true,
  },
  // torchvision's GoogLeNet rescales its (normalised) input channels to (x − 0.5)/0.5 of the raw pixels when
  // built for its published weights (transform_input); off as its constructor has it.
  transformInput: {
    kind: 'switch',
    help: "torchvision GoogLeNet's transform_input (googlenet-tv; its published weights need it)",
    absent: 'off',
    variant: true,
  },
} as const satisfies Readonly<Record<string, ModelOptionSpec>>;

type Table = typeof MODEL_OPTIONS;
export type ModelOptionName = keyof Table;

type ValueOf<E> = E extends { readonly values: readonly (infer V)[] } ? V : E extends { readonly kind: 'switch' } ? boolean : number;
type FilledValueOf<E> = E extends { readonly mayBeUnknown: true } ? ValueOf<E> | undefined : ValueOf<E>;
type IsFilled<E> = E extends { readonly default: unknown } | { readonly fromSpec: unknown } ? true : false;
type Simplify<T> = { [K in keyof T]: T[K] };

/** The options `buildModel` builds from: every defaulted option filled in, the others absent unless given. */
export type ModelOptions = Simplify<
  { -readonly [K in keyof Table as IsFilled<Table[K]> extends true ? K : never]: FilledValueOf<Table[K]> } & {
    -readonly [K in keyof Table as IsFilled<Table[K]> extends true ? never : K]?: ValueOf<Table[K]>;
  }
>;

export const MODEL_OPTION_NAMES = Object.keys(MODEL_OPTIONS) as ModelOptionName[];

/** The table entry, widened to the spec's shape for code that reads any field of any entry. */
export function optionSpec(name: ModelOptionName): ModelOptionSpec {
  return MODEL_OPTIONS[name];
}

/** The option's flag: inputSize → "--input-size". */
export function optionFlag(name: ModelOptionName): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** What a value of the option must be, as "Expected …" says it; `quoted` writes choices as JSON strings (files). */
export function optionExpected(name: ModelOptionName, quoted = false): string {
  const e = optionSpec(name);
  switch (e.kind) {
    case 'count':
      return quoted && e.fileMax !== undefined ? `a positive integer up to ${e.fileMax}` : 'a positive integer';
    case 'width':
      return 'a positive number';
    case 'rate':
      return 'a rate in [0, 1)';
    case 'switch':
      return 'a boolean';
    case 'choice': {
      const vs = e.values ?? [];
      return quoted ? orList(vs, '"') : `one of ${vs.join(', ')}`;
    }
  }
}

/** Whether `v` is a value of the option; `inFile` also applies the bound a file may record. */
export function optionValueOk(name: ModelOptionName, v: unknown, inFile = false): boolean {
  const e = optionSpec(name);
  switch (e.kind) {
    case 'count':
      return Number.isSafeInteger(v) && (v as number) >= 1 && !(inFile && e.fileMax !== undefined && (v as number) > e.fileMax);
    case 'width':
      return typeof v === 'number' && Number.isFinite(v) && v > 0;
    case 'rate':
      return typeof v === 'number' && v >= 0 && v < 1;
    case 'switch':
      return typeof v === 'boolean';
    case 'choice':
      return (e.values ?? []).some((x) => x === v);
  }
}

/** --help's text for the option: its words, its choices with their notes, and its default. */
export function optionHelp(name: ModelOptionName): string {
  const e = optionSpec(name);
  const choices = e.values?.map((v) => (e.notes?.[v] !== undefined ? `${v} (${e.notes[v]})` : v)).join(' | ');
  const text = [e.help, choices].filter(Boolean).join(': ');
  const dflt =
    e.fromSpec !== undefined
      ? ": the paper's"
      : e.absent !== undefined
        ? e.values?.includes(e.absent)
          ? ` ${e.absent}`
          : `: ${e.absent}`
        : e.default !== undefined && typeof e.default !== 'boolean'
          ? ` ${e.default}`
          : undefined;
  return dflt === undefined ? text : `${text} (default${dflt})`;
}

/** The fields of a model's spec (ModelSpec) that options take their defaults from. */
interface SpecDefaults {
  defaultInput: number;
  dropout: number;
}

/** The value of a defaulted option for `spec` when it is not given; undefined for an option that stays absent. */
export function optionDefault(name: ModelOptionName, spec: SpecDefaults): unknown {
  const e = optionSpec(name);
  return e.fromSpec !== undefined ? spec[e.fromSpec] : e.default;
}

/** The variant options (`variant`) set in `o`, as name and value: [["lrn", "caffe"], ["input", "caffe"]]. */
export function variantOf(o: Partial<ModelOptions>): [ModelOptionName, string][] {
  return MODEL_OPTION_NAMES.filter((k) => optionSpec(k).variant && o[k] !== undefined).map((k) => [k, String(o[k])]);
}

/** Whether `v` is the option's default written out (kept absent instead). */
export function isAbsentDefault(name: ModelOptionName, v: unknown): boolean {
  const e = optionSpec(name);
  return e.absent !== undefined && v === e.absent && (e.values ?? []).includes(e.absent);
}
