/**
 * Batch norm's running statistics as model state: a run killed with -9 resumes them bit-exactly
 * (the in-place native update, and the graph update whose K-step Loop carries them); weights that
 * lack them are refused, by name, whether they come in through --from or --resume.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { ilsvrc, MAIN, TINY } from '../../test/cli/run.js';
import { assertOk, assertRefused, cli, HANG_MS, type Case, type Context, sameWeights } from './harness.js';

const BN_TINY = TINY.map((a) => (a === 'vgg-a' ? 'vgg-a-bn' : a));

/** Trains `args` to the end in `dir`/straight, then kills a second run at a random moment after its first checkpoint and resumes it. */
async function killAndResume(ctx: Context, tag: string, env: NodeJS.ProcessEnv): Promise<string> {
  const args = [...BN_TINY, '--max-steps', '12', '--checkpoint-every', '3'];
  const straight = join(ctx.dir, `${tag}-straight`);
  assertOk(await ilsvrc([...args, '--out', straight], env, HANG_MS));
  const out = join(ctx.dir, `${tag}-killed`);
  const delay = ctx.rng.int(1000);
  const child = spawn(process.execPath, [MAIN, ...args, '--out', out], { stdio: 'ignore', env: { ...process.env, ...env } });
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  while (!existsSync(join(out, 'last.safetensors')) && child.exitCode === null) await new Promise((res) => setTimeout(res, 5));
  await new Promise((res) => setTimeout(res, delay));
  child.kill('SIGKILL');
  await exited;
  assertOk(await ilsvrc(['train', '--resume', '--out', out, '--threads', '1'], env, HANG_MS));
  const last = join(out, 'last.safetensors');
  sameWeights(join(straight, 'last.safetensors'), last);
  const rv = loadCheckpoint(last).state.params.get('conv1_1_bn.running_var');
  assert.ok(rv && rv.some((v) => v !== 1), 'the running variance is in the checkpoint and has moved');
  return `${tag} +${delay} ms`;
}

export const BATCH_NORM: Case[] = [
  {
    name: 'batch-norm-kill-9-then-resume',
    what: 'kill -9 a vgg-a-bn run (native update; graph update, 3 steps a Loop), --resume',
    async run(ctx) {
      // The native update's kill -9 resume of vgg-a-bn is also test/cli/train.test.ts's: the quick form takes the Loop's only.
      const notes = [await killAndResume(ctx, 'loop', { ILSVRC_NATIVE_OPTIM: '0' })];
      if (!ctx.quick) notes.push(await killAndResume(ctx, 'native', {}));
      return `killed at ${notes.join(', ')}; running statistics resumed bit-identical`;
    },
  },
  {
    name: 'batch-norm-from-plain-weights',
    what: '--from a vgg-a checkpoint into vgg-a-bn',
    async run(ctx) {
      const plain = join(ctx.dir, 'plain');
      assertOk(await cli([...TINY, '--max-steps', '3', '--out', plain]));
      const r = await cli([...BN_TINY, '--from', join(plain, 'last.safetensors'), '--max-steps', '3', '--out', join(ctx.dir, 'bn')]);
      return assertRefused(r, /plain\/last\.safetensors/, /conv1_1_bn\.weight/);
    },
  },
  {
    name: 'batch-norm-resume-without-running-statistics',
    what: '--resume a vgg-a-bn checkpoint whose running variance was removed',
    async run(ctx) {
      const out = join(ctx.dir, 'run');
      assertOk(await cli([...BN_TINY, '--max-steps', '3', '--out', out]));
      const file = join(out, 'last.safetensors');
      const ck = loadCheckpoint(file);
      ck.state.params.delete('conv3_2_bn.running_var');
      const { format: _f, savedAt: _s, step: _t, rng: _r, ...meta } = ck.meta;
      saveCheckpoint(file, ck.state, meta);
      return assertRefused(await cli(['train', '--resume', file, '--threads', '1']), /last\.safetensors/, /conv3_2_bn\.running_var/);
    },
  },
];
