/**
 * `--data ilsvrc:DIR`: ILSVRC-2012 as it is distributed. DIR may hold
 * - the training set as one folder per synset, one tar per synset (`n01440764.tar`, the original
 *   download unpacked once), or the original `ILSVRC2012_img_train.tar` itself; tars are read in
 *   place (tar.ts);
 * - the validation set as one flat folder or `ILSVRC2012_img_val.tar` (`ILSVRC2012_val_00000001.JPEG`
 *   …) with its ground truth: `LOC_val_solution.csv` (Kaggle), or the devkit's
 *   `ILSVRC2012_validation_ground_truth.txt` with the ILSVRC2012_ID order from the devkit's `meta.mat`
 *   (or a `synsets.txt` listing the synsets in that order); the devkit unpacked, or
 *   `ILSVRC2012_devkit_t12.tar.gz` as downloaded, read in place (devkit.ts); or a folder per synset;
 * - class names: `synset_words.txt` or `LOC_synset_mapping.txt` (`n01440764 tench, Tinca tinca`),
 *   else meta.mat's words, else ImageNet-1k's built-in list (synsets.ts).
 * Classes are indexed by sorted synset id, as torchvision's ImageFolder, Caffe and Kaggle do: the
 * training synsets, else those a words file or meta.mat lists, else ImageNet-1k's 1 000 when every
 * synset the validation set names is one of them (a few images of ILSVRC-2012 are still scored
 * among its 1 000 classes), else the synsets the validation set names.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../util/errors.js';
import { readTextBounded } from '../util/read.js';
import { type ArchiveMembers, type DatasetSplits, FileDataset, IMAGE_EXTENSIONS, splitStratified } from './dataset.js';
import { DEVKIT_FILES, readDevkitTar, readMetaMat, type DevkitMeta, type DevkitParts } from './devkit.js';
import { className, imagenet1k, parseWords, setOnce, WNID } from './synsets.js';
import { indexTar, type TarEntry } from './tar.js';

/** Where each part is looked for, relative to DIR, first match wins. */
const ILSVRC_LAYOUT = {
  train: ['train', 'ILSVRC2012_img_train', 'ILSVRC/Data/CLS-LOC/train', 'ILSVRC2012_img_train.tar'],
  val: ['val', 'ILSVRC2012_img_val', 'ILSVRC/Data/CLS-LOC/val', 'ILSVRC2012_img_val.tar'],
  /** Folders searched for the text files below. */
  meta: ['.', 'ILSVRC2012_devkit_t12/data', 'ILSVRC2012_devkit_t12', 'devkit/data', 'devkit'],
  /** The devkit as downloaded, when no unpacked copy has what is looked for. */
  devkitTar: 'ILSVRC2012_devkit_t12.tar.gz',
  words: ['synset_words.txt', 'LOC_synset_mapping.txt'],
  solution: 'LOC_val_solution.csv',
  groundTruth: 'ILSVRC2012_validation_ground_truth.txt',
  idOrder: 'synsets.txt',
} as const;

const isImage = (name: string): boolean => (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(name).toLowerCase());

/** One image: a file, or a member of an archive. */
interface Item {
  file: string;
  member?: TarEntry;
  label: number;
}

export async function openIlsvrc(root: string, o: { valFraction?: number; seed?: number; channels?: 1 | 3 } = {}): Promise<DatasetSplits> {
  const stat = await fs.stat(root).catch(() => null);
  if (!stat?.isDirectory())
    throw new UsageError(`Expected an ILSVRC-2012 directory for --data ilsvrc:${root} but ${stat ? 'it is a file' : 'it does not exist'}`);
  const trainAt = await firstExisting(root, ILSVRC_LAYOUT.train);
  const valAt = await firstExisting(root, ILSVRC_LAYOUT.val);
  if (!trainAt && !valAt) {
    throw new UsageError(
      `Expected the training set (${ILSVRC_LAYOUT.train.join(', ')}) or the validation set (${ILSVRC_LAYOUT.val.join(', ')}) in ${root} but found neither`,
    );
  }
  const wordsFile = await findMeta(root, ILSVRC_LAYOUT.words);
  const words = wordsFile ? parseWords(readTextBounded(wordsFile, 'the synset words'), wordsFile) : null;

  const train = trainAt ? await trainSynsets(trainAt) : null;
  const val = valAt ? await valImages(valAt) : null;
  const devkit = val?.kind === 'flat' || (!train && !words) ? await readDevkit(root) : {};
  let wnids: string[];
  let listed = train ? trainAt : wordsFile;
  if (train) wnids = [...train.keys()].sort();
  else if (words) wnids = [...words.keys()].sort();
  else if (devkit.meta) [wnids, listed] = [[...devkit.meta.ids].sort(), devkit.meta.source];
  else wnids = [];

  // Validation labels, as synset ids per image.
  let valItems: Item[] = [];
  if (val?.kind === 'folders') {
    if (wnids.length === 0) [wnids, listed] = namedClasses(val.synsets.keys(), val.at);
    valItems = itemsOf(val.synsets, wnids, val.at, 'validation');
  } else if (val) {
    const truth = await groundTruth(root, val.at, devkit);
    if (wnids.length === 0) [wnids, listed] = namedClasses(truth.values(), truth.source);
    const index = new Map(wnids.map((w, i) => [w, i]));
    const seen = new Map<string, string>();
    for (const img of val.images) {
      const id = path.basename(img.name, path.extname(img.name));
      const twin = seen.get(id);
      const where = img.item.member ? `${img.item.member.name} at byte ${img.item.member.offset}` : img.name;
      if (twin !== undefined) {
        throw new UsageError(`Expected each validation image once in ${val.at} but ${id} is there twice (${twin} and ${where})`);
      }
      seen.set(id, where);
      const w = truth.get(id);
      if (w === undefined) throw new UsageError(`Expected a ground-truth label for ${img.name} in ${truth.source} but it has none`);
      const label = index.get(w);
      if (label === undefined)
        throw new UsageError(
          `Expected the synset of ${img.name} (${w}, from ${truth.source}) among the ${wnids.length} classes of ${listed} but it is not there`,
        );
      valItems.push({ ...img.item, label });
    }
  }
  if (words) {
    const missing = wnids.filter((w) => !words.has(w));
    if (missing.length)
      throw new UsageError(
        `Expected ${wordsFile} to name every class but it lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`,
      );
  }
  const builtIn = imagenet1k().words;
  const classes = wnids.map((w) => className(w, words?.get(w) ?? devkit.meta?.words.get(w) ?? builtIn.get(w)));
  const channels = o.channels ?? 3;
  const trainSet = train ? dataset(itemsOf(train, wnids, trainAt ?? root, 'training')) : new FileDataset([], new Int32Array(0));
  if (!val) {
    // Only the training set: hold out a share of it, as an ImageFolder without val/ does.
    const { train: tr, val: va } = splitStratified(trainSet, o.valFraction ?? 0.1, o.seed ?? 0);
    return { classes, train: tr, val: va, channels, source: `ilsvrc:${root} (no validation set: ${va.length} training images held out)` };
  }
  return { classes, train: trainSet, val: dataset(valItems), channels, source: `ilsvrc:${root}` };
}

async function firstExisting(root: string, names: readonly string[]): Promise<string | null> {
  for (const n of names) {
    const p = path.join(root, n);
    if (await fs.stat(p).catch(() => null)) return p;
  }
  return null;
}

async function findMeta(root: string, names: readonly string[]): Promise<string | null> {
  for (const dir of ILSVRC_LAYOUT.meta) {
    const p = await firstExisting(path.join(root, dir), names);
    if (p) return p;
  }
  return null;
}

/**
 * The classes when DIR lists none: ImageNet-1k's when every synset the validation set names is one
 * of them, else those synsets. With their own list, a few images of ILSVRC-2012 would be scored
 * among a handful of classes, and a 1 000-class model could not be evaluated on them.
 */
function namedClasses(seen: Iterable<string>, from: string): [string[], string] {
  const named = [...new Set(seen)].sort();
  const net = imagenet1k();
  if (named.every((w) => net.words.has(w))) return [[...net.wnids], 'ImageNet-1k'];
  return [named, from];
}

/** The devkit's parts, unpacked files first; the downloaded .tar.gz is read only for what they lack. */
async function readDevkit(root: string): Promise<DevkitParts & { order?: string }> {
  const metaFile = await findMeta(root, [DEVKIT_FILES.meta]);
  const truthFile = await findMeta(root, [DEVKIT_FILES.truth]);
  const order = (await findMeta(root, [ILSVRC_LAYOUT.idOrder])) ?? undefined;
  const out: DevkitParts & { order?: string } = order ? { order } : {};
  if (metaFile) out.meta = readMetaMat(metaFile);
  if (truthFile) out.truth = { text: readTextBounded(truthFile, 'the validation ground truth'), file: truthFile };
  const tar = (metaFile || order) && truthFile ? null : await firstExisting(root, [ILSVRC_LAYOUT.devkitTar]);
  if (tar) {
    const parts = readDevkitTar(tar);
    if (!out.meta && parts.meta) out.meta = parts.meta;
    if (!out.truth && parts.truth) out.truth = parts.truth;
  }
  return out;
}

/** Training images per synset: folders, per-synset tars, or the one tar of per-synset tars. */
async function trainSynsets(at: string): Promise<Map<string, Item[]>> {
  const out = new Map<string, Item[]>();
  if ((await fs.stat(at)).isFile()) {
    for (const e of indexTar(at)) {
      const wnid = path.basename(e.name, '.tar');
      if (!e.name.endsWith('.tar') || !WNID.test(wnid)) continue;
      if (out.has(wnid)) {
        throw new UsageError(
          `Expected each synset's tar once inside ${at} but ${wnid}.tar is there twice ` + `(the second at byte ${e.offset})`,
        );
      }
      const items = imagesOfTar(at, e);
      if (items.length === 0) throw new UsageError(`Expected images of synset ${wnid} in ${at} but its member ${e.name} holds none`);
      out.set(wnid, items);
    }
    if (out.size === 0) throw new UsageError(`Expected per-synset tars (n01440764.tar …) inside ${at} but found none`);
    return out;
  }
  const entries = (await fs.readdir(at, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const p = path.join(at, e.name);
    if (e.isDirectory() && WNID.test(e.name)) {
      const files = (await fs.readdir(p, { withFileTypes: true }))
        .filter((f) => f.isFile() && isImage(f.name))
        .map((f) => f.name)
        .sort();
      out.set(
        e.name,
        files.map((f) => ({ file: path.join(p, f), label: -1 })),
      );
    }
  }
  // A synset both unpacked and as a tar: the folder is what the user made from the tar.
  for (const e of entries) {
    const wnid = path.basename(e.name, '.tar');
    if (e.isFile() && e.name.endsWith('.tar') && WNID.test(wnid) && !out.has(wnid)) out.set(wnid, imagesOfTar(path.join(at, e.name)));
  }
  if (out.size === 0) throw new UsageError(`Expected one folder or tar per synset (n01440764/, n01440764.tar …) in ${at} but found none`);
  for (const [w, items] of out) if (items.length === 0) throw new UsageError(`Expected images of synset ${w} in ${at} but ${w} has none`);
  return out;
}

/** The images of a tar, by name; a name twice (appended with `tar -r`: extracting keeps the last) is refused. */
function imagesOfTar(file: string, within?: TarEntry): Item[] {
  const members = indexTar(file, within)
    .filter((m) => isImage(m.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.offset - b.offset));
  members.forEach((m, k) => {
    const prev = members[k - 1];
    if (prev?.name !== m.name) return;
    const tar = within ? `${within.name} inside ${file}` : file;
    throw new UsageError(`Expected each image once in ${tar} but ${m.name} is there twice (at bytes ${prev.offset} and ${m.offset})`);
  });
  return members.map((member) => ({ file, member, label: -1 }));
}

type ValImages =
  { kind: 'folders'; at: string; synsets: Map<string, Item[]> } | { kind: 'flat'; at: string; images: { name: string; item: Item }[] };

async function valImages(at: string): Promise<ValImages> {
  if ((await fs.stat(at)).isFile()) {
    const images = imagesOfTar(at).map((item) => ({ name: path.basename(item.member?.name ?? ''), item }));
    if (images.length === 0) throw new UsageError(`Expected validation images (ILSVRC2012_val_00000001.JPEG …) in ${at} but found none`);
    return { kind: 'flat', at, images };
  }
  const entries = await fs.readdir(at, { withFileTypes: true });
  const dirs = entries.filter((e) => e.isDirectory() && WNID.test(e.name));
  if (dirs.length > 0) return { kind: 'folders', at, synsets: await trainSynsets(at) };
  const images = entries
    .filter((e) => e.isFile() && isImage(e.name))
    .map((e) => e.name)
    .sort()
    .map((name) => ({ name, item: { file: path.join(at, name), label: -1 } }));
  if (images.length === 0)
    throw new UsageError(`Expected validation images (ILSVRC2012_val_00000001.JPEG …) or one folder per synset in ${at} but found neither`);
  return { kind: 'flat', at, images };
}

/** Image id (file name without extension) → synset id, with where it came from. */
type Truth = Map<string, string> & { source: string };

/**
 * Kaggle's solution file, else the devkit's ground truth. With both, an image they label
 * differently is refused, naming both files and both synsets: neither can be chosen silently.
 */
async function groundTruth(root: string, valAt: string, devkit: DevkitParts & { order?: string }): Promise<Truth> {
  const csv = await findMeta(root, [ILSVRC_LAYOUT.solution]);
  const kaggle = csv ? parseSolution(readTextBounded(csv, 'the validation solution'), csv) : null;
  const txt = devkit.truth;
  if (kaggle && (!txt || !(devkit.meta || devkit.order))) return kaggle;
  if (!txt) {
    throw new UsageError(
      `Expected the validation ground truth for ${valAt} (${ILSVRC_LAYOUT.solution}, or the devkit's ${DEVKIT_FILES.truth} with ${DEVKIT_FILES.meta} or ${ILSVRC_LAYOUT.idOrder}, or ${ILSVRC_LAYOUT.devkitTar}) in ${root} or its devkit folder but found none`,
    );
  }
  const ids = devkitOrder(devkit, txt.file);
  const truth = truthByIds(txt.text, txt.file, ids.wnids, ids.what);
  for (const [id, w] of kaggle ?? []) {
    const other = truth.get(id);
    if (other !== undefined && other !== w) {
      throw new UsageError(`Expected ${csv} and ${txt.file} to agree but they label ${id} ${w} and ${other}`);
    }
  }
  return kaggle ?? truth;
}

/** The synsets by ILSVRC2012_ID: meta.mat's, else synsets.txt's; with both, they must agree. */
function devkitOrder(devkit: DevkitParts & { order?: string }, truthFile: string): { wnids: string[]; what: string } {
  const listed = devkit.order ? orderIds(readTextBounded(devkit.order, 'the synset order'), devkit.order) : undefined;
  const meta: DevkitMeta | undefined = devkit.meta;
  if (meta && listed && devkit.order) {
    const k = Math.max(meta.ids.length, listed.length);
    const at = Array.from({ length: k }, (_, i) => i).find((i) => meta.ids[i] !== listed[i]);
    if (at !== undefined) {
      throw new UsageError(
        `Expected ${devkit.order} and ${meta.source} to agree but ILSVRC2012_ID ${at + 1} is ${listed[at] ?? 'absent'} in one and ${meta.ids[at] ?? 'absent'} in the other`,
      );
    }
  }
  if (meta) return { wnids: meta.ids, what: `the classes of ${meta.source}` };
  if (listed && devkit.order) return { wnids: listed, what: `the lines of ${devkit.order}` };
  throw new UsageError(
    `Expected ${DEVKIT_FILES.meta} (or ${ILSVRC_LAYOUT.idOrder}: the synset ids in meta.mat's ILSVRC2012_ID order, one per line) beside ${truthFile}, which holds those ids, but it is missing`,
  );
}

/** Kaggle's `ImageId,PredictionString` where the string starts with the synset id. */
export function parseSolution(text: string, file: string): Truth {
  const out = new Map<string, string>() as Truth;
  const at = new Map<string, number>();
  out.source = file;
  const lines = text.split(/\r?\n/);
  if (!/^ImageId,PredictionString\s*$/.test(lines[0] ?? ''))
    throw new UsageError(
      `Expected the header 'ImageId,PredictionString' in ${file} but received ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`,
    );
  lines.slice(1).forEach((line, k) => {
    if (!line.trim()) return;
    const [id, pred] = line.split(',');
    const wnid = pred?.trim().split(/\s+/)[0] ?? '';
    if (!id || !WNID.test(wnid))
      throw new UsageError(`Expected 'ImageId,n######## …' on line ${k + 2} of ${file} but received ${JSON.stringify(line.slice(0, 40))}`);
    setOnce(out, at, id.trim(), wnid, k + 2, file, 'label per image');
  });
  return out;
}

/**
 * The devkit's ground truth: line k holds the ILSVRC2012_ID (1-based) of ILSVRC2012_val_000000k;
 * `order` lists the synsets by that id.
 */
export function parseGroundTruth(text: string, file: string, orderText: string, orderFile: string): Truth {
  return truthByIds(text, file, orderIds(orderText, orderFile), `the lines of ${orderFile}`);
}

/** synsets.txt: one synset id per line, in meta.mat's ILSVRC2012_ID order. */
function orderIds(orderText: string, orderFile: string): string[] {
  const ids = orderText
    .split(/\r?\n/)
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
  ids.forEach((w, k) => {
    if (!WNID.test(w))
      throw new UsageError(
        `Expected a synset id (n########) on line ${k + 1} of ${orderFile} but received ${JSON.stringify(w.slice(0, 40))}`,
      );
    const first = ids.indexOf(w);
    // Two ILSVRC2012_IDs for one synset: one id or the other labels its images wrongly.
    if (first < k) {
      throw new UsageError(
        `Expected each synset once in ${orderFile} (one per ILSVRC2012_ID) but ${w} is ILSVRC2012_ID ${first + 1} ` + `and ${k + 1}`,
      );
    }
  });
  // The sorted order (Caffe's synsets.txt, LOC_synset_mapping.txt) is not meta.mat's: there,
  // ILSVRC2012_ID 1 is n02119789 (kit fox). Reading the ids through it would mislabel silently.
  if (ids.length === 1000 && ids.every((w, k) => k === 0 || (ids[k - 1] ?? '') < w)) {
    throw new UsageError(
      `Expected ${orderFile} in meta.mat's ILSVRC2012_ID order (n02119789 first) but it is sorted by synset id, the order of Caffe's synsets.txt and LOC_synset_mapping.txt`,
    );
  }
  return ids;
}

/** Line k of the devkit's ground truth holds the ILSVRC2012_ID (1-based, an index into `ids`) of ILSVRC2012_val_000000k. */
function truthByIds(text: string, file: string, ids: readonly string[], idsFrom: string): Truth {
  const out = new Map<string, string>() as Truth;
  out.source = file;
  text.split(/\r?\n/).forEach((line, k) => {
    if (!line.trim()) return;
    const id = Number(line.trim());
    const w = Number.isInteger(id) ? ids[id - 1] : undefined;
    if (w === undefined)
      throw new UsageError(
        `Expected an ILSVRC2012_ID from 1 to ${ids.length} (${idsFrom}) on line ${k + 1} of ${file} but received ${JSON.stringify(line.trim().slice(0, 40))}`,
      );
    out.set(`ILSVRC2012_val_${String(k + 1).padStart(8, '0')}`, w);
  });
  return out;
}

function itemsOf(bySynset: Map<string, Item[]>, wnids: readonly string[], at: string, what: string): Item[] {
  const out: Item[] = [];
  const index = new Map(wnids.map((w, i) => [w, i]));
  for (const [w, items] of [...bySynset].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const label = index.get(w);
    if (label === undefined)
      throw new UsageError(`Expected the ${what} synset ${w} in ${at} to be one of the ${wnids.length} classes but it is not`);
    for (const it of items) out.push({ ...it, label });
  }
  return out;
}

/** Plain files, or archive members (every item then names its archive and range). */
function dataset(items: readonly Item[]): FileDataset {
  const paths = items.map((it) => it.file);
  const labels = Int32Array.from(items, (it) => it.label);
  if (!items.some((it) => it.member)) return new FileDataset(paths, labels);
  if (!items.every((it) => it.member)) {
    throw new UsageError(
      `Expected the synsets to be all folders or all tars but ${items.find((it) => !it.member)?.file ?? '?'} is a file and ${items.find((it) => it.member)?.file ?? '?'} an archive; unpack the rest, or remove the folders`,
    );
  }
  const members: ArchiveMembers = {
    names: items.map((it) => it.member?.name ?? ''),
    offsets: Float64Array.from(items, (it) => it.member?.offset ?? 0),
    sizes: Float64Array.from(items, (it) => it.member?.size ?? 0),
  };
  return new FileDataset(paths, labels, members);
}
