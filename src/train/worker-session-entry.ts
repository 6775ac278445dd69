/** The worker side of WorkerSession: one TrainingSession, requests handled strictly in order. */
import { parentPort } from 'node:worker_threads';
import { TrainingSession } from './training-session.js';
import { answer, type Reply, type Request } from './worker-session.js';

const port = parentPort;
if (!port) throw new Error('worker-session-entry runs only as a worker thread');

let session: TrainingSession | undefined;
let queue: Promise<void> = Promise.resolve();

async function handle(req: Request): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  const none = { value: null, transfer: [] };
  if (req.op === 'create') {
    session = await TrainingSession.create(...req.args);
    return none;
  }
  if (req.op === 'release') {
    await session?.release();
    session = undefined;
    return none;
  }
  if (!session) throw new Error('no session: create it first');
  return answer(session, req.op, req.args);
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
