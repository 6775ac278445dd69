/**
 * scripts/bench-browser: the demo model (VGG-A 1/16 at 32 px on the synthetic shapes) trained for
 * the same steps at the same batch in the page (Chromium headless, ONNX Runtime Web on WebAssembly
 * threads, as `ilsvrc serve` serves it) and in Node (TrainingSession, onnxruntime-node), on this
 * machine. Both count images per second from the end of the first step (which compiles). Prints
 * the CPU and ISA, then one JSON line: {"browser_img_s", "node_img_s", "ratio", ...}.
 * Flags: --steps N (default 30), --batch N (default 32).
 */
import { availableParallelism } from 'node:os';
import { TrainingSession } from '../src/train/training-session.js';
import { SyntheticTensors, stepLr, trainingConfig, WEB_DEFAULTS, type WebRunConfig } from '../src/web/trainer.js';
import { noBrowser, openPage, trainOnPage } from '../test/browser/driver.js';
import { intArg } from './args.js';
import { cpuInfo } from './peer.js';

async function inNode(c: WebRunConfig, threads: number): Promise<{ imgS: number; update: string }> {
  const s = await TrainingSession.create({ ...trainingConfig(c), session: { threads } });
  const data = new SyntheticTensors(c);
  // Batches rendered before the clock starts: the page renders its own inside its steps, so this favours Node slightly.
  const batches = Array.from({ length: c.steps }, (_, i) => data.trainBatch(i));
  let t0 = 0;
  for (let i = 0; i < c.steps; i++) {
    await s.runSteps([batches[i]!], [stepLr(c, i)]);
    if (i === 0) t0 = performance.now();
  }
  const imgS = ((c.steps - 1) * c.batch) / ((performance.now() - t0) / 1000);
  const update = s.updateIn;
  await s.release();
  return { imgS, update };
}

async function inBrowser(c: WebRunConfig): Promise<{ imgS: number; threads: number; backend: string }> {
  const s = await openPage();
  try {
    const p = await trainOnPage(s, { batch: String(c.batch), steps: String(c.steps) }, 600_000);
    if (p.error || p.imagesPerSecond === null) throw new Error(`the page: ${p.error || 'no rate shown'}`);
    return { imgS: p.imagesPerSecond, threads: p.threads, backend: p.backend };
  } finally {
    await s.close();
  }
}

const why = noBrowser();
if (why) {
  console.error(`bench-browser: ${why}`);
  process.exit(2);
}
const c: WebRunConfig = { ...WEB_DEFAULTS, steps: intArg('steps', 30, 2), batch: intArg('batch', 32) };
const cpu = cpuInfo();
const threads = availableParallelism();
console.log(`machine: ${cpu.model}, ${cpu.cores} cores, ISA ${cpu.isa.join(' ') || 'baseline'}`);
console.log(`model: ${c.model} width ${c.width} at ${c.inputSize} px, batch ${c.batch}, ${c.steps} steps, seed ${c.seed}`);
const browser = await inBrowser(c);
console.log(`browser (Chromium, ONNX Runtime Web ${browser.backend}, ${browser.threads} threads): ${browser.imgS.toFixed(1)} img/s`);
const node = await inNode(c, threads);
console.log(`node (onnxruntime-node, ${threads} threads, ${node.update} update): ${node.imgS.toFixed(1)} img/s`);
console.log(
  JSON.stringify({
    model: c.model,
    width: c.width,
    input: c.inputSize,
    batch: c.batch,
    steps: c.steps,
    browser_img_s: Number(browser.imgS.toFixed(2)),
    browser_threads: browser.threads,
    node_img_s: Number(node.imgS.toFixed(2)),
    node_threads: threads,
    node_update: node.update,
    ratio: Number((browser.imgS / node.imgS).toFixed(3)),
    cpu,
  }),
);
