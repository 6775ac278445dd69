/**
 * A miniature ILSVRC-2012, written the way the real one is laid out: three synsets of tiny JPEGs
 * as folders and as per-synset tars (made by the system's tar, as the original was), the outer
 * training tar, a flat validation folder and tar, the devkit's ground truth with a synset list in
 * a non-sorted ILSVRC2012_ID order, Kaggle's LOC_val_solution.csv and synset words.
 *
 * Every image is a flat colour with one dominant channel, so a channel-mean "classifier" predicts
 * that channel; validation image k is labelled LABELS[k] and coloured COLOURS[k] (two disagree).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

export const WNIDS = ['n01440764', 'n01443537', 'n01484850'] as const;
export const WORDS = ['tench, Tinca tinca', 'goldfish, Carassius auratus', 'great white shark, white shark, man-eater'] as const;
/** A devkit-like ILSVRC2012_ID order: id 1 is the third synset, id 2 the first, id 3 the second. */
export const ID_ORDER = [WNIDS[2], WNIDS[0], WNIDS[1]] as const;
/** Validation labels (index into the sorted WNIDS) and the dominant channel of each image. */
export const LABELS = [0, 1, 2, 0, 1, 2] as const;
export const COLOURS = [0, 1, 2, 1, 1, 0] as const;
export const TRAIN_PER_CLASS = 3;

export async function jpeg(channel: number, seed: number, width = 20, height = 16): Promise<Buffer> {
  const px = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) px[(y * width + x) * 3 + c] = c === channel ? 200 : 50 + ((x * 7 + y * 3 + seed * 11 + c * 5) % 20);
    }
  }
  return sharp(Buffer.from(px), { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 95 })
    .toBuffer();
}

function tar(out: string, cwd: string, names: readonly string[], format = 'gnu'): void {
  execFileSync('tar', [`--format=${format}`, '-cf', out, '-C', cwd, ...names]);
}

export interface Layout {
  /** train/<wnid>/ folders, val/ flat, devkit ground truth + synsets.txt, synset_words.txt. */
  folders: string;
  /** train/<wnid>.tar, ILSVRC2012_img_val.tar, LOC_val_solution.csv, LOC_synset_mapping.txt. */
  tars: string;
  /** ILSVRC2012_img_train.tar (a tar of the per-synset tars), ILSVRC2012_img_val.tar and the devkit folder. */
  outer: string;
}

export async function writeLayout(root: string): Promise<Layout> {
  const folders = join(root, 'folders');
  const tars = join(root, 'tars');
  const outer = join(root, 'outer');
  const devkit = join(folders, 'ILSVRC2012_devkit_t12', 'data');
  for (const d of [join(tars, 'train'), join(outer, 'ILSVRC2012_devkit_t12', 'data'), devkit, join(folders, 'val')])
    mkdirSync(d, { recursive: true });
  for (const [k, w] of WNIDS.entries()) {
    const dir = join(folders, 'train', w);
    mkdirSync(dir, { recursive: true });
    const names: string[] = [];
    for (let j = 0; j < TRAIN_PER_CLASS; j++) {
      names.push(`${w}_${100 + j}.JPEG`);
      writeFileSync(join(dir, names[j]!), await jpeg(k, j));
    }
    tar(join(tars, 'train', `${w}.tar`), dir, names);
  }
  tar(
    join(outer, 'ILSVRC2012_img_train.tar'),
    join(tars, 'train'),
    WNIDS.map((w) => `${w}.tar`),
  );
  const valNames = LABELS.map((_, k) => `ILSVRC2012_val_${String(k + 1).padStart(8, '0')}.JPEG`);
  for (const [k, name] of valNames.entries()) writeFileSync(join(folders, 'val', name), await jpeg(COLOURS[k]!, 50 + k, 18, 22));
  tar(join(tars, 'ILSVRC2012_img_val.tar'), join(folders, 'val'), valNames);
  tar(join(outer, 'ILSVRC2012_img_val.tar'), join(folders, 'val'), valNames, 'ustar');

  const gt = LABELS.map((l) => String(ID_ORDER.indexOf(WNIDS[l]!) + 1)).join('\n') + '\n';
  for (const d of [devkit, join(outer, 'ILSVRC2012_devkit_t12', 'data')]) {
    writeFileSync(join(d, 'ILSVRC2012_validation_ground_truth.txt'), gt);
    writeFileSync(join(d, 'synsets.txt'), ID_ORDER.join('\n') + '\n');
  }
  writeFileSync(join(folders, 'synset_words.txt'), WNIDS.map((w, k) => `${w} ${WORDS[k]}`).join('\n') + '\n');
  const boxes = (w: string) => `${w} 10 12 100 120 ${w} 5 5 30 40`; // Kaggle lists every box; the first token is what counts
  writeFileSync(
    join(tars, 'LOC_val_solution.csv'),
    ['ImageId,PredictionString', ...LABELS.map((l, k) => `${valNames[k]!.replace('.JPEG', '')},${boxes(WNIDS[l]!)} `)].join('\n') + '\n',
  );
  writeFileSync(join(tars, 'LOC_synset_mapping.txt'), WNIDS.map((w, k) => `${w} ${WORDS[k]}`).join('\r\n') + '\r\n');
  return { folders, tars, outer };
}
