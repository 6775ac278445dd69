/** The worker side of WorkerSession: one TrainingSession, requests handled strictly in order. */
import { parentPort } from 'node:worker_threads';
import { TrainingSession } from './training-session.js';
import type { Reply, Request } from './worker-session.js';

const port = parentPort;
if (!port) throw new Error('worker-session-entry runs only as a worker thread');

let session: TrainingSession | undefined;
let queue: Promise<void> = Promise.resolve();

function need(): TrainingSession {
  if (!session) throw new Error('no session: create it first');
  return session;
}

async function handle(req: Request): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  const none = { value: null, transfer: [] };
  switch (req.op) {
    case 'create': {
      const [config, state] = req.args as Request<'create'>['args'];
      session = await TrainingSession.create(config, state);
      return none;
    }
    case 'runFusedSteps': {
      const [batches, lrs] = req.args as Request<'runFusedSteps'>['args'];
      return { value: await need().runFusedSteps(batches, lrs), transfer: [] };
    }
    case 'runTrainStep':
      return { value: await need().runTrainStep((req.args as Request<'runTrainStep'>['args'])[0]), transfer: [] };
    case 'runOptimizerStep':
      await need().runOptimizerStep((req.args as Request<'runOptimizerStep'>['args'])[0]);
      return none;
    case 'runEvalStep': {
      const r = await need().runEvalStep((req.args as Request<'runEvalStep'>['args'])[0]);
      // The logits are ORT's output, not kept here: give the buffer away when it is a whole one.
      const logits = r.logits.slice();
      return { value: { ...r, logits }, transfer: [logits.buffer] };
    }
    case 'runInference': {
      const [x, rows] = req.args as Request<'runInference'>['args'];
      const logits = (await need().runInference(x, rows)).slice();
      return { value: logits, transfer: [logits.buffer] };
    }
    case 'snapshot': {
      // Copied by the structured clone: the session keeps using its own arrays.
      return { value: need().snapshot(), transfer: [] };
    }
    case 'exportModel': {
      const bytes = need().exportModelForInferencing((req.args as Request<'exportModel'>['args'])[0]);
      const own = bytes.slice();
      return { value: own, transfer: [own.buffer] };
    }
    case 'release':
      await session?.release();
      session = undefined;
      return none;
  }
}

port.on('message', (req: Request) => {
  queue = queue.then(async () => {
    let reply: Reply;
    let transfer: ArrayBuffer[] = [];
    try {
      const r = await handle(req);
      reply = { id: req.id, ok: true, value: r.value };
      transfer = r.transfer;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      reply = { id: req.id, ok: false, name: err.name, message: err.message, ...(err.stack !== undefined ? { stack: err.stack } : {}) };
    }
    port.postMessage(reply, transfer);
  });
});
