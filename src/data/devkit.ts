/**
 * The ILSVRC-2012 devkit as it is downloaded: `ILSVRC2012_devkit_t12.tar.gz` read in place, or
 * unpacked. Its `data/meta.mat` holds the struct array `synsets` (1 860 rows: the 1 000 classes,
 * ILSVRC2012_ID 1 to 1 000 with no children, then the WordNet synsets above them), which gives
 * the ILSVRC2012_ID order that `ILSVRC2012_validation_ground_truth.txt` labels images by, and the
 * classes' words.
 */
import path from 'node:path';
import { UsageError } from '../util/errors.js';
import { gunzipBounded, readBounded } from '../util/read.js';
import { readMat, type MatValue } from './matlab.js';
import { WNID } from './synsets.js';
import { indexTarBytes } from './tar.js';

/** The real meta.mat is 0.4 MB and the devkit 2.5 MB (about 10 MB inflated): far more is something else. */
const META_LIMIT = 64 << 20;
const DEVKIT_LIMIT = 256 << 20;

export const DEVKIT_FILES = { meta: 'meta.mat', truth: 'ILSVRC2012_validation_ground_truth.txt' } as const;

/** The classes of meta.mat: `ids[k]` is the synset of ILSVRC2012_ID k + 1. */
export interface DevkitMeta {
  ids: string[];
  words: Map<string, string>;
  source: string;
}

/** What a devkit holds: its classes (meta.mat) and the validation ground truth, each where found. */
export interface DevkitParts {
  meta?: DevkitMeta;
  truth?: { text: string; file: string };
}

function text(v: MatValue | undefined): string | undefined {
  if (v?.type === 'char') return v.text;
  if (v?.type === 'numeric' && v.data.length === 0) return '';
  return undefined;
}

function scalar(v: MatValue | undefined): number | undefined {
  return v?.type === 'numeric' && v.data.length === 1 ? v.data[0] : undefined;
}

/** The leaf synsets of meta.mat (no children) by ILSVRC2012_ID, which must run 1 … K without a gap or a repeat. */
export function parseMetaMat(bytes: Uint8Array, file: string): DevkitMeta {
  const synsets = readMat(bytes, file, META_LIMIT).get('synsets');
  const need = ['ILSVRC2012_ID', 'WNID', 'words'];
  if (synsets?.type !== 'struct' || need.some((f) => !synsets.fields.includes(f))) {
    const got =
      synsets === undefined
        ? 'no variable synsets'
        : synsets.type === 'struct'
          ? `fields ${synsets.fields.join(', ')}`
          : `a ${synsets.type} array`;
    throw new UsageError(
      `Expected the struct array synsets with fields ${need.join(', ')} in ${file} (the devkit's meta.mat) but found ${got}`,
    );
  }
  const byId = new Map<number, { wnid: string; row: number }>();
  const words = new Map<string, string>();
  const rowOf = new Map<string, number>();
  synsets.elements.forEach((el, k) => {
    const row = `row ${k + 1} of synsets in ${file}`;
    const id = scalar(el.get('ILSVRC2012_ID'));
    const wnid = text(el.get('WNID')) ?? '';
    const w = text(el.get('words'));
    const children = el.has('num_children') ? scalar(el.get('num_children')) : 0;
    if (id === undefined || !Number.isInteger(id) || id < 1)
      throw new UsageError(`Expected a positive integer ILSVRC2012_ID in ${row} but found none`);
    if (!WNID.test(wnid))
      throw new UsageError(`Expected a synset id (n########) as WNID in ${row} but found ${JSON.stringify(wnid.slice(0, 40))}`);
    if (w === undefined || children === undefined) throw new UsageError(`Expected words and num_children in ${row} but found other values`);
    const twice = rowOf.get(wnid);
    if (twice !== undefined)
      throw new UsageError(`Expected each synset once in synsets of ${file} but ${wnid} is rows ${twice} and ${k + 1}`);
    rowOf.set(wnid, k + 1);
    if (children !== 0) return;
    const other = byId.get(id);
    if (other)
      throw new UsageError(
        `Expected one synset per ILSVRC2012_ID in ${file} but ${id} is ${other.wnid} (row ${other.row}) and ${wnid} (row ${k + 1})`,
      );
    byId.set(id, { wnid, row: k + 1 });
    words.set(wnid, w);
  });
  const ids: string[] = [];
  for (let id = 1; id <= byId.size; id++) {
    const s = byId.get(id);
    if (!s)
      throw new UsageError(`Expected the ${byId.size} classes of ${file} to have ILSVRC2012_ID 1 to ${byId.size} but ${id} is missing`);
    ids.push(s.wnid);
  }
  if (ids.length === 0) throw new UsageError(`Expected classes (rows with num_children 0) in synsets of ${file} but it has none`);
  return { ids, words, source: file };
}

export function readMetaMat(file: string): DevkitMeta {
  return parseMetaMat(readBounded(file, META_LIMIT, 'the devkit metadata'), file);
}

/** meta.mat and the ground truth from the devkit's .tar.gz, inflated in memory (bounded) and read in place. */
export function readDevkitTar(file: string): DevkitParts {
  const tar = gunzipBounded(readBounded(file, DEVKIT_LIMIT, 'the devkit'), file, DEVKIT_LIMIT, 'the devkit');
  const out: DevkitParts = {};
  const seen = new Map<string, string>();
  for (const e of indexTarBytes(tar, file)) {
    const base = path.posix.basename(e.name);
    if (base !== DEVKIT_FILES.meta && base !== DEVKIT_FILES.truth) continue;
    const twin = seen.get(base);
    if (twin !== undefined) throw new UsageError(`Expected one ${base} in ${file} but it holds ${twin} and ${e.name}`);
    seen.set(base, e.name);
    const bytes = tar.subarray(e.offset, e.offset + e.size);
    const where = `${file}:${e.name}`;
    if (base === DEVKIT_FILES.meta) out.meta = parseMetaMat(bytes, where);
    else out.truth = { text: bytes.toString('utf8'), file: where };
  }
  if (!out.meta && !out.truth)
    throw new UsageError(`Expected ${DEVKIT_FILES.meta} or ${DEVKIT_FILES.truth} in the devkit ${file} but it holds neither`);
  return out;
}
