/**
 * The training page in a real browser (Debian's Chromium, headless): it trains the demo VGG-A
 * 1/16, its checkpoint reads back in the CLI with the top-1 the page showed, its parameters equal
 * Node's TrainingSession's after the same steps, and a mistake on the page is one line.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { renderShape, SYNTHETIC_CLASSES } from '../../src/data/synthetic-render.js';
import { pngText } from '../../src/plot/image.js';
import { Rng } from '../../src/util/rng.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { TrainingSession } from '../../src/train/training-session.js';
import { stepLr, SyntheticTensors, trainingConfig, WEB_DEFAULTS, type WebRunConfig } from '../../src/web/trainer.js';
import { ilsvrc } from '../cli/run.js';
import { noBrowser, openPage, shown, trainOnPage, type Session, type Shown } from './driver.js';

const skip = noBrowser();
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ilsvrc-browser-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The page's checkpoint, downloaded as a user would. */
async function downloadCheckpoint(s: Session, file: string): Promise<string> {
  const [dl] = await Promise.all([s.page.waitForEvent('download'), s.page.click('#ckpt')]);
  await dl.saveAs(file);
  return file;
}

/** The page's val images as PNG files in an ImageFolder whose sorted folders are the page's class order. */
async function writeValFolder(c: WebRunConfig, root: string): Promise<void> {
  const data = new SyntheticTensors(c);
  for (const split of ['train', 'val'])
    for (const [cls, k] of data.val) {
      const folder = join(root, split, `c${cls}-${SYNTHETIC_CLASSES[cls]}`);
      mkdirSync(folder, { recursive: true });
      const raw = { width: c.inputSize, height: c.inputSize, channels: 3 as const };
      await sharp(data.pixels(cls, k), { raw })
        .png()
        .toFile(join(folder, `${k}.png`));
    }
}

/** Where the screenshots go: the test's folder, or ILSVRC_SCREENSHOTS (docs/images when the pictures are refreshed). */
const shots = (): string => process.env['ILSVRC_SCREENSHOTS'] || dir;

/** Waits for the page's one-line error and returns it. */
async function errorLine(s: Session): Promise<string> {
  await s.page.waitForFunction(() => (globalThis as unknown as { ilsvrcPage: Shown }).ilsvrcPage.error !== '', null, { timeout: 60_000 });
  return (await s.page.textContent('#error')) ?? '';
}

const pictured = (s: Session, name: string): Promise<unknown> =>
  s.page.waitForFunction(
    (n) => (globalThis as unknown as { ilsvrcPage: { pictures: { image: string } | null } }).ilsvrcPage.pictures?.image === n,
    name,
    { timeout: 60_000 },
  );

/** The words of the page's pictures (window.ilsvrcPage.figures), by canvas. */
type Figures = Record<string, { title: string; labels: string[]; bars: { label: string; min: number | string; max: number | string }[] }>;

/** The title of the CLI's picture `args` of the checkpoint (its PNG's Title text). */
async function cliTitle(args: readonly string[], out: string): Promise<string> {
  const r = await ilsvrc(['visualize', ...args, '-o', out, '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  return pngText(readFileSync(out))['Title'] ?? '';
}

/** Probabilities as words ("97.3%"), masked: the page's WebAssembly and the CLI's CPU provider may differ in the last digit. */
const masked = (t: string): string => t.replace(/-?\d+\.\d%/g, '#%');

/**
 * An image dropped on the trained page gets its three pictures, with the CLI's words: each title names
 * the layer, the class by name and its probability, the occlusion map has its colour bar with numbers;
 * a file that is no image is one line and the page goes on.
 */
async function dropImages(s: Session, ckpt: string): Promise<void> {
  // At the input size, so the browser and the CLI see the same pixels.
  const small = join(dir, 'triangle.png');
  await sharp(renderShape(2, 32, new Rng(7)), { raw: { width: 32, height: 32, channels: 3 } })
    .png()
    .toFile(small);
  await s.page.setInputFiles('#file', small);
  await pictured(s, 'triangle.png');
  await s.page.screenshot({ path: join(shots(), 'browser-pictures.png'), fullPage: true });
  const { pictures, figures } = await s.page.evaluate(
    () => (globalThis as unknown as { ilsvrcPage: { pictures: { predicted: string; probability: number }; figures: Figures } }).ilsvrcPage,
  );
  const pct = `${(100 * pictures.probability).toFixed(1)}%`;
  assert.match(
    figures['occlusion']!.title,
    new RegExp(`^vgg-a · conv\\S+ · occlusion · triangle\\.png · class ${pictures.predicted} ${pct}$`),
  );
  assert.match(figures['deconv']!.title, /^vgg-a · conv\S+ · deconvnet · triangle\.png · predicted \S+ \d+\.\d%$/);
  const bar = figures['occlusion']!.bars[0]!;
  assert.equal(bar.label, `fall in P(${pictures.predicted})`);
  assert.match(`${bar.min} ${bar.max}`, /^-?\d+\.\d% -?\d+\.\d%$/);
  assert.equal(figures['filters']!.title, await cliTitle(['filters', ckpt], join(dir, 'filters.png')));
  assert.equal(masked(figures['occlusion']!.title), masked(await cliTitle(['occlusion', ckpt, small], join(dir, 'occlusion.png'))));
  assert.equal(masked(figures['deconv']!.title), masked(await cliTitle(['deconvnet', ckpt, small], join(dir, 'deconvnet.png'))));
  const raw = { width: 96, height: 96, channels: 3 as const };
  const png = await sharp(renderShape(2, 96, new Rng(7)), { raw })
    .png()
    .toBuffer();
  await s.page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('no pixels here') });
  assert.match(
    await errorLine(s),
    /^Expected an image \(PNG, JPEG, GIF, WebP or BMP\) in notes\.txt but the browser cannot decode it as one$/,
  );
  await s.page.screenshot({ path: join(shots(), 'browser-bad-file.png') });
  // The page goes on: the next image gets its pictures and the line clears.
  await s.page.setInputFiles('#file', { name: 'again.png', mimeType: 'image/png', buffer: png });
  await pictured(s, 'again.png');
  assert.equal((await shown(s)).error, '');
}

test(
  'the page trains VGG-A 1/16 for 50 steps, the loss falls, its checkpoint evaluates in the CLI to the top-1 it showed; mistakes are one line',
  { skip },
  async () => {
    const c: WebRunConfig = { ...WEB_DEFAULTS, batch: 16, steps: 50 };
    const s = await openPage();
    try {
      // Mistakes first, each one line, and the page trains afterwards.
      await s.page.setInputFiles('#file', { name: 'early.png', mimeType: 'image/png', buffer: Buffer.from('not yet') });
      assert.match(await errorLine(s), /^Expected a trained model for early\.png but none is trained yet/);
      await s.page.fill('#inputSize', '16');
      await s.page.click('#train');
      assert.match(await errorLine(s), /^vgg-a at --input-size 16: [^\n]+$/);
      const running = trainOnPage(s, { width: '1/16', inputSize: '32', batch: String(c.batch), steps: String(c.steps), seed: '0' });
      await s.page.waitForFunction(() => (globalThis as unknown as { ilsvrcPage: { step: number } }).ilsvrcPage.step >= 20, null, {
        timeout: 120_000,
      });
      await s.page.screenshot({ path: join(shots(), 'browser-training.png') });
      const p = await running;
      assert.equal(p.error, '');
      assert.equal(p.losses.length, c.steps);
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      const [first, last] = [mean(p.losses.slice(0, 10)), mean(p.losses.slice(-10))];
      assert.ok(last < first - 0.1, `loss falls: first ten ${first.toFixed(3)}, last ten ${last.toFixed(3)}`);
      const nVal = new SyntheticTensors(c).val.length;
      assert.match((await s.page.textContent('#numbers')) ?? '', new RegExp(`val top-1 \\d+\\.\\d\\d% of ${nVal}$`));
      const ckpt = await downloadCheckpoint(s, join(dir, 'page.safetensors'));
      await writeValFolder(c, join(dir, 'val-images'));
      const r = await ilsvrc(['evaluate', ckpt, '--data', join(dir, 'val-images'), '--json', '--threads', '1', '--out', join(dir, 'eval')]);
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { top1: number; n: number };
      process.stdout.write(
        `# page: loss ${first.toFixed(3)} → ${last.toFixed(3)}, top-1 ${p.top1} of ${p.valImages}; CLI evaluate: ${json.top1} of ${json.n}\n`,
      );
      assert.equal(json.n, p.valImages);
      assert.equal(json.top1, p.top1);
      await dropImages(s, ckpt);
    } finally {
      await s.close();
    }
  },
);

test(
  'ten steps on the page and in Node (TrainingSession, same seed and batches) give parameters equal within 1e-4 relative',
  { skip },
  async () => {
    const c: WebRunConfig = { ...WEB_DEFAULTS, batch: 8, steps: 10 };
    const s = await openPage();
    let page;
    try {
      const p = await trainOnPage(s, { batch: String(c.batch), steps: String(c.steps), seed: String(c.seed) });
      assert.equal(p.error, '');
      page = loadCheckpoint(await downloadCheckpoint(s, join(dir, 'ten.safetensors')));
    } finally {
      await s.close();
    }
    const node = await TrainingSession.create({ ...trainingConfig(c), session: { threads: 1 } });
    const data = new SyntheticTensors(c);
    for (let i = 0; i < c.steps; i++) await node.runSteps([data.trainBatch(i)], [stepLr(c, i)]);
    let worst = 0;
    for (const [name, want] of node.params) {
      const got = page.state.params.get(name);
      assert.ok(got && got.length === want.length, `${name} in the page's checkpoint`);
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < want.length; i++) {
        diff += (got[i]! - want[i]!) ** 2;
        norm += want[i]! ** 2;
      }
      worst = Math.max(worst, Math.sqrt(diff / norm));
    }
    await node.release();
    process.stdout.write(`# largest relative difference of a parameter tensor after ${c.steps} steps: ${worst.toExponential(2)}\n`);
    assert.ok(worst <= 1e-4, `parameters differ by ${worst} relative`);
    assert.equal(page.meta.step, c.steps);
  },
);
