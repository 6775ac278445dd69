/// <reference lib="dom" />
/**
 * The training page (web/index.html, served by `ilsvrc serve`): reads the form, trains through
 * WebTrainer (src/web/trainer.ts), draws the curves, offers the checkpoint and the ONNX model as
 * downloads, and shows what the network sees in an image dropped on it. Every mistake is one line
 * in #error and the page goes on. `window.ilsvrcPage` holds the numbers shown, for tests.
 */
import ort from './ort-web.js';
import { UsageError } from '../util/errors.js';
import { MODELS } from '../zoo/index.js';
import { barColors, barValue, figureGrid, type ColorBar, type FigureSpec } from '../plot/raster.js';
import { filtersPicture, imagePictures, webNetwork } from './pictures.js';
import { checkConfig, normalise, WEB_DEFAULTS, WebTrainer, type WebRunConfig } from './trainer.js';

interface PageState {
  state: 'idle' | 'training' | 'done' | 'error';
  step: number;
  losses: number[];
  accuracy: number[];
  /** Top-1 over the val images after training (hits / n), as shown. */
  top1: number | null;
  valImages: number;
  imagesPerSecond: number | null;
  backend: string;
  threads: number;
  error: string;
  /** What the pictures show: the image's predicted class, its probability, the projected unit. */
  pictures: { image: string; predicted: string; probability: number; lowest: number; channel: number } | null;
  /** The words of each picture drawn, by canvas: its title, tile labels and colour bars. */
  figures: Record<string, { title: string; labels: readonly string[]; bars: readonly ColorBar[] }>;
}

const page: PageState = {
  state: 'idle',
  step: 0,
  losses: [],
  accuracy: [],
  top1: null,
  valImages: 0,
  imagesPerSecond: null,
  backend: '',
  threads: 1,
  error: '',
  pictures: null,
  figures: {},
};
(globalThis as unknown as { ilsvrcPage: PageState }).ilsvrcPage = page;

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
};

let trainer: WebTrainer | undefined;
let stopRequested = false;

/** One line for the user: what was expected and what came; a bug says so. */
function showError(e: unknown): void {
  const text = e instanceof UsageError ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
  page.error = text.split('\n')[0] ?? text;
  $('error').textContent = page.error;
}

function clearError(): void {
  page.error = '';
  $('error').textContent = '';
}

/** "1/16", "0.0625" or "2" as a number; anything else is the field's mistake. */
function fieldNumber(id: string): number {
  const raw = ($(id) as HTMLInputElement).value.trim();
  const frac = /^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/.exec(raw);
  const v = frac ? Number(frac[1]) / Number(frac[2]) : raw === '' ? NaN : Number(raw);
  if (!Number.isFinite(v)) throw new UsageError(`Expected a number for ${id} but received ${JSON.stringify(raw)}`);
  return v;
}

function readForm(): WebRunConfig {
  return checkConfig({
    ...WEB_DEFAULTS,
    model: ($('model') as HTMLSelectElement).value,
    width: fieldNumber('width'),
    inputSize: fieldNumber('inputSize'),
    batch: fieldNumber('batch'),
    steps: fieldNumber('steps'),
    lr: fieldNumber('lr'),
    seed: fieldNumber('seed'),
  });
}

/** WebGPU where the browser has an adapter and the user did not ask for WebAssembly; else WebAssembly, with a note. */
async function chooseBackend(): Promise<'webgpu' | 'wasm'> {
  const threads = globalThis.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 16) : 1;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = '/ort/';
  page.threads = threads;
  const wasm = `WebAssembly, ${threads} thread${threads === 1 ? '' : 's'}${globalThis.crossOriginIsolated ? '' : ' (the page is not cross-origin isolated)'}`;
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const asked = ($('backend') as HTMLSelectElement).value;
  const adapter = asked === 'auto' && gpu ? await gpu.requestAdapter().catch(() => null) : null;
  const why = asked !== 'auto' ? '' : !gpu ? 'no WebGPU in this browser, so ' : !adapter ? 'no WebGPU adapter, so ' : '';
  $('note').textContent = adapter ? '(WebGPU)' : `(${why}${wasm})`;
  return adapter ? 'webgpu' : 'wasm';
}

async function create(c: WebRunConfig): Promise<WebTrainer> {
  const backend = await chooseBackend();
  page.backend = backend;
  if (backend === 'wasm') return WebTrainer.create(c, { providers: ['wasm'] });
  try {
    return await WebTrainer.create(c, { providers: ['webgpu', 'wasm'] });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    page.backend = 'wasm';
    $('note').textContent = `(WebGPU could not compile the training graph, so WebAssembly: ${String(e).slice(0, 120)})`;
    return WebTrainer.create(c, { providers: ['wasm'] });
  }
}

function drawCurves(): void {
  const cv = $('loss') as HTMLCanvasElement;
  const g = cv.getContext('2d')!;
  g.clearRect(0, 0, cv.width, cv.height);
  const n = page.losses.length;
  if (n === 0) return;
  const top = Math.max(...page.losses.slice(0, 5), 0.1);
  const line = (values: number[], max: number, colour: string): void => {
    g.strokeStyle = colour;
    g.beginPath();
    values.forEach((v, i) => {
      const x = 30 + ((cv.width - 40) * i) / Math.max(1, (trainer?.config.steps ?? n) - 1);
      const y = cv.height - 20 - ((cv.height - 30) * Math.min(v, max)) / max;
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
  };
  g.fillStyle = '#555';
  g.fillText(top.toFixed(2), 2, 14);
  g.fillText('0', 2, cv.height - 20);
  line(page.losses, top, '#c62828');
  line(page.accuracy, 1, '#1565c0');
}

function showNumbers(): void {
  const last = page.losses.at(-1);
  const parts = [
    `step ${page.step}/${trainer?.config.steps ?? 0}`,
    last !== undefined ? `loss ${last.toFixed(4)}` : '',
    page.imagesPerSecond !== null ? `${page.imagesPerSecond.toFixed(1)} img/s` : '',
    page.top1 !== null ? `val top-1 ${(100 * page.top1).toFixed(2)}% of ${page.valImages}` : '',
  ];
  $('numbers').textContent = parts.filter(Boolean).join(' · ');
}

function setRunning(running: boolean): void {
  ($('train') as HTMLButtonElement).disabled = running;
  ($('stop') as HTMLButtonElement).disabled = !running;
  ($('ckpt') as HTMLButtonElement).disabled = running || !trainer;
  ($('onnx') as HTMLButtonElement).disabled = running || !trainer;
}

const nextFrame = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

async function train(): Promise<void> {
  clearError();
  const c = readForm();
  await trainer?.release();
  trainer = undefined;
  Object.assign(page, { state: 'training', step: 0, losses: [], accuracy: [], top1: null, imagesPerSecond: null });
  stopRequested = false;
  setRunning(true);
  $('status').textContent = 'building the training graph…';
  trainer = await create(c);
  $('status').textContent = 'training';
  let t0 = 0;
  for (let s = 0; s < c.steps && !stopRequested; s++) {
    const m = await trainer.trainStep();
    // The first step compiles kernels: the rate counts from its end.
    if (s === 0) t0 = performance.now();
    else page.imagesPerSecond = (s * c.batch) / ((performance.now() - t0) / 1000);
    page.step = trainer.step;
    page.losses.push(m.loss);
    page.accuracy.push(m.top1 / Math.max(1, m.n));
    if (s % 5 === 0 || s === c.steps - 1) {
      drawCurves();
      showNumbers();
    }
    await nextFrame();
  }
  $('status').textContent = 'evaluating on the val images…';
  const { hits, n } = await trainer.evaluate();
  page.top1 = hits / n;
  page.valImages = n;
  drawCurves();
  showNumbers();
  setRunning(false);
  drawFigure('filters', filtersPicture(webNetwork(trainer, PICTURES)));
  const [cls, k] = trainer.data.val[0]!;
  await showImage(`val image ${k} (${trainer.checkpointClasses[cls]})`, trainer.data.pixels(cls, k));
  page.state = 'done';
  $('status').textContent = stopRequested ? 'stopped' : 'done';
}

/** The pictures' probes run on WebAssembly: WebGPU has no kernels for the backward sweep's composites. */
const PICTURES = { providers: ['wasm'] };

const FONT = 'system-ui, sans-serif';
const LABEL_FONT = 10;
const BAR = { width: 14, minHeight: 120, font: 10 } as const;

/** A colour bar at (x, y), h high: its colours bottom (min) to top (max), both numbers, its label turned; returns its width. */
function drawBar(g: CanvasRenderingContext2D, bar: ColorBar, x: number, y: number, h: number): number {
  const grad = g.createLinearGradient(0, y + h, 0, y);
  const stops = barColors(bar);
  stops.forEach(([r, gr, b], i) => grad.addColorStop(i / (stops.length - 1), `rgb(${r},${gr},${b})`));
  g.fillStyle = grad;
  g.fillRect(x, y, BAR.width, h);
  g.strokeStyle = '#333';
  g.strokeRect(x + 0.5, y + 0.5, BAR.width - 1, h - 1);
  g.font = `${BAR.font}px ${FONT}`;
  g.fillStyle = '#222';
  const [hi, lo] = [barValue(bar.max), barValue(bar.min)];
  const nx = x + BAR.width + 4;
  g.fillText(hi, nx, y + BAR.font);
  g.fillText(lo, nx, y + h);
  const lx = nx + Math.max(g.measureText(hi).width, g.measureText(lo).width) + 6 + BAR.font;
  g.save();
  g.translate(lx, y + h / 2);
  g.rotate(-Math.PI / 2);
  g.textAlign = 'center';
  g.fillText(bar.label, 0, 0, h);
  g.restore();
  return lx + 4 - x;
}

/** A picture of the network on a canvas, laid out as the CLI's PNG (src/plot/figure.ts): title, tiles, labels, colour bars. */
function drawFigure(id: string, spec: FigureSpec): void {
  const { g: grid } = figureGrid(spec, LABEL_FONT);
  const cv = $(id) as HTMLCanvasElement;
  const g = cv.getContext('2d')!;
  const titleHeight = 30 + (spec.subtitle ? 16 : 0);
  const margin = 8;
  const barHeight = Math.max(BAR.minHeight, grid.height - 2 * grid.pad);
  g.font = `bold 15px ${FONT}`;
  const titleWidth = g.measureText(spec.title).width;
  g.font = `11px ${FONT}`;
  const subtitleWidth = g.measureText(spec.subtitle ?? '').width;
  // Bars are measured by drawing them on a scratch context: their width depends on their numbers.
  const scratch = new OffscreenCanvas(1, 1).getContext('2d')! as unknown as CanvasRenderingContext2D;
  const barsWidth = (spec.bars ?? []).reduce((w, bar) => w + drawBar(scratch, bar, 0, 0, barHeight) + 12, 0);
  cv.width = Math.ceil(
    Math.max(margin + grid.width + 10 + barsWidth, margin + grid.width + margin, 2 * margin + titleWidth, subtitleWidth),
  );
  cv.height = titleHeight + Math.max(grid.height, spec.bars?.length ? barHeight + 2 * grid.pad : 0) + margin;
  g.fillStyle = '#fff';
  g.fillRect(0, 0, cv.width, cv.height);
  const data = new ImageData(grid.width, grid.height);
  for (let i = 0; i < grid.width * grid.height; i++)
    data.data.set([grid.rgb[i * 3]!, grid.rgb[i * 3 + 1]!, grid.rgb[i * 3 + 2]!, 255], i * 4);
  g.putImageData(data, margin, titleHeight);
  g.fillStyle = '#222';
  g.font = `bold 15px ${FONT}`;
  g.fillText(spec.title, margin, 21);
  if (spec.subtitle) {
    g.font = `11px ${FONT}`;
    g.fillStyle = '#444';
    g.fillText(spec.subtitle, margin, 39, cv.width - margin);
  }
  g.font = `${LABEL_FONT}px ${FONT}`;
  g.fillStyle = '#222';
  g.textAlign = 'center';
  (spec.labels ?? []).forEach((label, i) => {
    if (i >= spec.tiles.length) return;
    const x = margin + grid.pad + (i % grid.cols) * (grid.cell.width + grid.pad) + grid.cell.width / 2;
    const y =
      titleHeight + grid.pad + Math.floor(i / grid.cols) * (grid.cell.height + grid.below + grid.pad) + grid.cell.height + LABEL_FONT + 1;
    g.fillText(label, x, y, grid.cell.width - 4);
  });
  g.textAlign = 'start';
  let x = margin + grid.width + 10;
  for (const bar of spec.bars ?? []) x += drawBar(g, bar, x, titleHeight + grid.pad, barHeight) + 12;
  cv.title = spec.title;
  page.figures[id] = { title: spec.title, labels: spec.labels ?? [], bars: spec.bars ?? [] };
}

/** The deconvnet projection and the occlusion maps of one image (RGB HWC at the input size). */
async function showImage(name: string, rgb: Uint8Array): Promise<void> {
  if (!trainer) throw new UsageError(`Expected a trained model for ${name} but none is trained yet: press Train first`);
  const side = trainer.config.inputSize;
  const x = new Float32Array(3 * side * side);
  normalise(rgb, x, 0, side);
  const p = await imagePictures(webNetwork(trainer, PICTURES), x, name);
  drawFigure('deconv', p.deconvnet);
  drawFigure('occlusion', p.occlusion);
  const predicted = trainer.checkpointClasses[p.predicted]!;
  page.pictures = { image: name, predicted, probability: p.probability, lowest: p.lowest, channel: p.channel };
}

/** A dropped or chosen file, decoded by the browser and resized to the input size. */
async function dropped(file: File): Promise<void> {
  clearError();
  if (!trainer) throw new UsageError(`Expected a trained model for ${file.name} but none is trained yet: press Train first`);
  const bitmap = await createImageBitmap(file).catch(() => {
    throw new UsageError(`Expected an image (PNG, JPEG, GIF, WebP or BMP) in ${file.name} but the browser cannot decode it as one`);
  });
  const side = trainer.config.inputSize;
  const cv = new OffscreenCanvas(side, side);
  const g = cv.getContext('2d')!;
  g.drawImage(bitmap, 0, 0, side, side);
  const rgba = g.getImageData(0, 0, side, side).data;
  const rgb = new Uint8Array(side * side * 3);
  for (let i = 0; i < side * side; i++) rgb.set([rgba[i * 4]!, rgba[i * 4 + 1]!, rgba[i * 4 + 2]!], i * 3);
  await showImage(file.name, rgb);
}

function download(name: string, parts: BlobPart[]): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function fileName(ext: string): string {
  const c = trainer!.config;
  return `${c.model}-w${c.width}-s${c.inputSize}-step${trainer!.step}.${ext}`;
}

function guard(f: () => Promise<void>): () => void {
  return () => {
    f().catch((e: unknown) => {
      showError(e);
      if (page.state !== 'training') return;
      page.state = 'error';
      setRunning(false);
      $('status').textContent = 'idle';
    });
  };
}

/** The form's fields start at WEB_DEFAULTS (a width as a fraction where it is one: 0.0625 is 1/16). */
function fillForm(): void {
  const c = WEB_DEFAULTS;
  const fields = { width: Number.isInteger(1 / c.width) ? `1/${1 / c.width}` : String(c.width), inputSize: c.inputSize };
  for (const [id, v] of Object.entries({ ...fields, batch: c.batch, steps: c.steps, lr: c.lr, seed: c.seed }))
    ($(id) as HTMLInputElement).value = String(v);
}

function init(): void {
  fillForm();
  const select = $('model') as HTMLSelectElement;
  for (const m of MODELS)
    select.add(new Option(`${m.name} (${m.year})`, m.name, m.name === WEB_DEFAULTS.model, m.name === WEB_DEFAULTS.model));
  $('form').addEventListener('submit', (e) => {
    e.preventDefault();
    guard(train)();
  });
  $('stop').addEventListener('click', () => (stopRequested = true));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) guard(() => dropped(file))();
  });
  $('file').addEventListener('change', () => {
    const file = ($('file') as HTMLInputElement).files?.[0];
    if (file) guard(() => dropped(file))();
  });
  $('ckpt').addEventListener(
    'click',
    guard(async () => {
      const metrics: Record<string, number> = page.top1 !== null ? { val_top1: page.top1 } : {};
      download(fileName('safetensors'), trainer!.checkpoint(metrics) as BlobPart[]);
    }),
  );
  $('onnx').addEventListener(
    'click',
    guard(async () => download(fileName('onnx'), [trainer!.onnx() as BlobPart])),
  );
}

init();
