/**
 * Datasets are index → (image source, label). Two kinds, both plain data so a worker thread can
 * rebuild them: files on disk or tar members (decoded by sharp) and rows of one in-memory uint8
 * array (IDX, CIFAR; HWC, in a SharedArrayBuffer so workers read it without a copy).
 */
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { formatBytes, machineBudget } from '../util/budget.js';
import { Rng } from '../util/rng.js';
import { UsageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { readBounded, readTextBounded } from '../util/read.js';
import { readMember } from './tar.js';

export type DatasetDescriptor =
  | { kind: 'files'; paths: string[]; labels: Int32Array; members?: ArchiveMembers }
  | {
      kind: 'pixels';
      data: Uint8Array;
      width: number;
      height: number;
      channels: 1 | 3;
      rows: Int32Array;
      labels: Int32Array;
      name: string;
    };

/** Items that are members of archives: paths[i] is the archive, these say where in it (tar.ts). */
export interface ArchiveMembers {
  names: string[];
  offsets: Float64Array;
  sizes: Float64Array;
}

export interface Dataset {
  readonly length: number;
  label(i: number): number;
  /** A file path, or "<source>#<row>" for in-memory rows: what a skipped-image report names. */
  name(i: number): string;
  readonly descriptor: DatasetDescriptor;
}

export interface DatasetSplits {
  classes: string[];
  train: Dataset;
  val: Dataset;
  /** Channels of the source images (1 for MNIST-like sets; files are decoded as 3 unless asked). */
  channels: 1 | 3;
  /** Where the data came from, for logs: a folder, 'idx:/path', 'synthetic:/cache/dir'. */
  source: string;
}

/**
 * The most bytes one image file may take when read whole: each loader thread reads several at once
 * (the decode concurrency, 4 by default, and batches ahead), so one may take a sixteenth of the memory budget.
 */
export function maxItemBytes(): number {
  return Math.floor(machineBudget().memory / 16);
}

export class FileDataset implements Dataset {
  readonly descriptor: DatasetDescriptor & { kind: 'files' };

  constructor(paths: string[], labels: Int32Array, members?: ArchiveMembers) {
    if (paths.length !== labels.length) throw new Error(`FileDataset: ${paths.length} paths but ${labels.length} labels`);
    if (members && members.names.length !== paths.length)
      throw new Error(`FileDataset: ${paths.length} paths but ${members.names.length} archive members`);
    this.descriptor = members ? { kind: 'files', paths, labels, members } : { kind: 'files', paths, labels };
  }

  get length(): number {
    return this.descriptor.paths.length;
  }

  label(i: number): number {
    return this.descriptor.labels[i] ?? -1;
  }

  name(i: number): string {
    const m = this.descriptor.members;
    return m ? `${this.descriptor.paths[i] ?? ''}:${m.names[i] ?? `#${i}`}` : (this.descriptor.paths[i] ?? `#${i}`);
  }

  /** Item i's size in bytes, read before its bytes (a file too large for any image is not read). */
  size(i: number): number {
    const d = this.descriptor;
    return d.members ? (d.members.sizes[i] ?? 0) : statSync(d.paths[i] ?? '').size;
  }

  /** Item i's bytes: the whole file, or its member's range of the archive; one larger than maxItemBytes is refused unread. */
  read(i: number): Buffer {
    const d = this.descriptor;
    const file = d.paths[i] ?? '';
    if (!d.members) return readBounded(file, maxItemBytes(), 'an image file');
    const size = d.members.sizes[i] ?? 0;
    if (size > maxItemBytes()) {
      const most = formatBytes(maxItemBytes());
      throw new UsageError(`Expected the image ${this.name(i)} to be at most ${most} but it is ${formatBytes(size)} (${size} bytes)`);
    }
    return readMember(file, d.members.offsets[i] ?? 0, size);
  }
}

export class PixelDataset implements Dataset {
  readonly descriptor: DatasetDescriptor & { kind: 'pixels' };

  constructor(d: Omit<DatasetDescriptor & { kind: 'pixels' }, 'kind'>) {
    this.descriptor = { kind: 'pixels', ...d };
  }

  get length(): number {
    return this.descriptor.rows.length;
  }

  label(i: number): number {
    return this.descriptor.labels[i] ?? -1;
  }

  name(i: number): string {
    return `${this.descriptor.name}#${this.descriptor.rows[i] ?? i}`;
  }

  /** HWC pixels of item i (a view, not a copy). */
  pixels(i: number): Uint8Array {
    const d = this.descriptor;
    const n = d.width * d.height * d.channels;
    const r = d.rows[i] ?? 0;
    return d.data.subarray(r * n, (r + 1) * n);
  }
}

export function datasetFromDescriptor(d: DatasetDescriptor): Dataset {
  return d.kind === 'files' ? new FileDataset(d.paths, d.labels, d.members) : new PixelDataset(d);
}

/** The items at `indices`, in that order. */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const d = ds.descriptor;
  const labels = Int32Array.from({ length: indices.length }, (_, k) => d.labels[indices[k] ?? 0] ?? -1);
  if (d.kind === 'files') {
    const pick = <T>(a: ArrayLike<T>, fill: T): T[] => Array.from({ length: indices.length }, (_, k) => a[indices[k] ?? 0] ?? fill);
    const m = d.members;
    const members = m && {
      names: pick(m.names, ''),
      offsets: Float64Array.from(pick(m.offsets, 0)),
      sizes: Float64Array.from(pick(m.sizes, 0)),
    };
    return new FileDataset(pick(d.paths, ''), labels, members);
  }
  return new PixelDataset({ ...d, rows: Int32Array.from({ length: indices.length }, (_, k) => d.rows[indices[k] ?? 0] ?? 0), labels });
}

/** Stratified seeded split: `valFraction` of each class (at least one image when the class has two). */
export function splitStratified(ds: Dataset, valFraction: number, seed: number): { train: Dataset; val: Dataset } {
  if (!(valFraction > 0 && valFraction < 1)) throw new UsageError(`Expected a validation fraction in (0, 1) but received ${valFraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < ds.length; i++) {
    const l = ds.label(i);
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  }
  const train: number[] = [];
  const val: number[] = [];
  const rng = new Rng(seed).fork('split');
  for (const [l, list] of [...byClass.entries()].sort((a, b) => a[0] - b[0])) {
    rng.fork(l).shuffle(list);
    const k = list.length < 2 ? 0 : Math.max(1, Math.round(list.length * valFraction));
    val.push(...list.slice(0, k));
    train.push(...list.slice(k));
  }
  train.sort((a, b) => a - b);
  val.sort((a, b) => a - b);
  return { train: subset(ds, train), val: subset(ds, val) };
}

/** The extensions torchvision's ImageFolder accepts, less those sharp cannot read (bmp, ppm, pgm). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'] as const;

/**
 * The folders and files in `dir` (hidden ones left out), sorted, following symbolic links as
 * torchvision's ImageFolder does. A dangling link is listed as a file: loading it then reports it.
 */
async function listDir(dir: string): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const target = await fs.stat(path.join(dir, e.name)).catch(() => null);
      isDir = target?.isDirectory() ?? false;
      isFile = target ? target.isFile() : true;
    }
    if (isDir) dirs.push(e.name);
    else if (isFile) files.push(e.name);
  }
  return { dirs: dirs.sort(), files: files.sort() };
}

/**
 * Image files anywhere under `dir` (torchvision walks class folders with followlinks=True), in
 * torchvision's order: folders by path, files by name within each. A link back to a folder that
 * contains it would never end: that is an error naming the link.
 */
async function imagesUnder(dir: string, ancestors: ReadonlySet<string>): Promise<string[]> {
  const found: [string, string[]][] = [];
  const walk = async (d: string, above: ReadonlySet<string>): Promise<void> => {
    const real = await fs.realpath(d);
    if (above.has(real))
      throw new UsageError(`Expected an ImageFolder without folder cycles but ${d} leads back to ${real}, which contains it`);
    const inner = new Set(above).add(real);
    const { dirs, files } = await listDir(d);
    found.push([
      d,
      files.filter((f) => (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(f).toLowerCase())).map((f) => path.join(d, f)),
    ]);
    for (const sub of dirs) await walk(path.join(d, sub), inner);
  };
  await walk(dir, ancestors);
  found.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return found.flatMap(([, f]) => f);
}

/** Whether `p` exists; a path that cannot be checked (permissions) is the file-system error's to report. */
export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw e;
  }
}

/**
 * torchvision's ImageFolder: `root/<class>/<image>`, classes sorted by name. With `classes`, the
 * index is fixed (val must use train's classes); a class folder missing here is an error.
 */
export async function imageFolder(root: string, classes?: readonly string[]): Promise<{ classes: string[]; dataset: FileDataset }> {
  let stat;
  try {
    stat = await fs.stat(root);
  } catch (e) {
    // Permissions and the like are the file-system error's to word (one line, exit 2).
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new UsageError(`Expected an ImageFolder directory at ${root} but it does not exist`);
  }
  if (!stat.isDirectory()) throw new UsageError(`Expected an ImageFolder directory at ${root} but found a file`);
  const found = (await listDir(root)).dirs;
  if (found.length === 0)
    throw new UsageError(`Expected an ImageFolder with one sub-folder per class in ${root} but found no class folders`);
  const names = classes ? [...classes] : found;
  // Sets, not Array.includes: at 10 000 classes the lookups would be 10⁸ string compares.
  const known = new Set(names);
  const present = new Set(found);
  const extra = found.filter((c) => !known.has(c));
  if (extra.length > 0)
    throw new UsageError(
      `Expected only the training set's class folders in ${root} but ${extra
        .slice(0, 3)
        .map((c) => `'${c}'`)
        .join(', ')}${extra.length > 3 ? ` and ${extra.length - 3} more` : ''} ${extra.length === 1 ? 'is' : 'are'} not among them`,
    );
  const top = new Set([await fs.realpath(root)]);
  const paths: string[] = [];
  const labels: number[] = [];
  for (const [k, c] of names.entries()) {
    const dir = path.join(root, c);
    if (!present.has(c)) throw new UsageError(`Expected a class folder ${dir} (class '${c}' of the training set) but it is missing`);
    const files = await imagesUnder(dir, top);
    if (files.length === 0) throw new UsageError(`Expected images (${IMAGE_EXTENSIONS.join(', ')}) in class folder ${dir} but found none`);
    for (const f of files) {
      paths.push(f);
      labels.push(k);
    }
  }
  return { classes: names, dataset: new FileDataset(paths, Int32Array.from(labels)) };
}

/**
 * An ImageFolder root: `root/train/<class>` + `root/val/<class>` when both exist, else
 * `root/<class>` split per class with `valFraction` (seeded).
 */
export async function openImageFolder(
  root: string,
  o: { valFraction?: number; seed?: number; channels?: 1 | 3 } = {},
): Promise<DatasetSplits> {
  const trainDir = path.join(root, 'train');
  const valDir = path.join(root, 'val');
  if ((await exists(trainDir)) && (await exists(valDir))) {
    const tr = await imageFolder(trainDir);
    const va = await imageFolder(valDir, tr.classes);
    return { classes: tr.classes, train: tr.dataset, val: va.dataset, channels: o.channels ?? 3, source: root };
  }
  const all = await imageFolder(root);
  const { train, val } = splitStratified(all.dataset, o.valFraction ?? 0.1, o.seed ?? 0);
  return { classes: all.classes, train, val, channels: o.channels ?? 3, source: root };
}

const CLASS_INDEX_FORMAT = 'ilsvrc-class-index-v1';

/** Writes the class names (index → name) next to a checkpoint, so predictions can be named later. */
export async function writeClassIndex(file: string, classes: readonly string[]): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  writeFileAtomic(file, new TextEncoder().encode(JSON.stringify({ format: CLASS_INDEX_FORMAT, classes }, null, 1) + '\n'));
}

export async function readClassIndex(file: string): Promise<string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readTextBounded(file, 'the class index'));
  } catch (e) {
    throw new UsageError(`Expected a class-index JSON file at ${file} but could not read it: ${(e as Error).message}`);
  }
  const p = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { format?: unknown; classes?: unknown };
  if (p.format !== CLASS_INDEX_FORMAT || !Array.isArray(p.classes) || !p.classes.every((c) => typeof c === 'string')) {
    throw new UsageError(`Expected {"format":"${CLASS_INDEX_FORMAT}","classes":[...]} in ${file} but found something else`);
  }
  return p.classes as string[];
}
