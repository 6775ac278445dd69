/**
 * One SGD step of ilsvrc against the same step in PyTorch (scripts/peer_step.py), from the same
 * weights and batch: grouped convs, LRN, overlapping and ceil-mode pooling, global average pooling,
 * fully connected layers, batch norm in training mode (its running statistics too), cross-entropy,
 * momentum and weight decay. Skipped without torch.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import { loadSafetensors, saveSafetensors, type TensorInput } from '../../src/runtime/safetensors.js';
import { TrainingSession } from '../../src/train/training-session.js';
import { Rng } from '../../src/util/rng.js';

const script = fileURLToPath(new URL('../../../scripts/peer_step.py', import.meta.url));
const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

// How far from PyTorch's each parameter's (and running statistic's) new value may be, relative to its
// update, and PyTorch's step it is measured against: its float32 step, or its float64 step, the exact
// one to float32's rounding.
for (const [model, width, size, tol, reference] of [
  ['alexnet', 1 / 16, 131, 1e-3, 'float32'],
  ['nin', 1 / 8, 96, 1e-3, 'float32'],
  ['vgg-a-bn', 1 / 16, 32, 1e-4, 'float32'],
  // 57 batch norms over 4 images: two float32 steps (ours, PyTorch's) differ by more than 1e-4 of some updates,
  // each being within 1e-4 of the float64 step (measured: both, every parameter).
  ['googlenet-tv', 1, 64, 1e-4, 'float64'],
] as const) {
  test(
    `${model}: one SGD step matches PyTorch's ${reference} step`,
    { skip: hasTorch ? false : 'PyTorch (Debian python3-torch) not installed' },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-peer-'));
      try {
        const batch = 4;
        const s = await TrainingSession.create({
          model,
          modelOptions: { width, inputSize: size, classes: 7, dropout: 0, init: 'kaiming' },
          batch,
          optimizer: { ...DEFAULT_OPTIMIZER, momentum: 0.9, weightDecay: 5e-4 },
          labelSmoothing: 0,
          frozen: [],
          seed: 4,
          session: { threads: 1 },
        });
        const rng = new Rng(8);
        const x = Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal());
        const labels = Int32Array.from({ length: batch }, () => rng.int(7));
        const tensors: Record<string, TensorInput> = {};
        const order = [...s.params.keys()];
        for (const [name, data] of s.params) tensors[name] = { dtype: 'F32', shape: [data.length], data: Float32Array.from(data) };
        tensors['input'] = { dtype: 'F32', shape: [batch, 3, size, size], data: x };
        tensors['labels'] = { dtype: 'I32', shape: [batch], data: labels };
        const src = join(dir, 'in.safetensors');
        const dst = join(dir, 'out.safetensors');
        saveSafetensors(src, tensors, { order: JSON.stringify(order) });
        const [m] = await s.runSteps([{ x, labels }], [0.01]);
        const r = spawnSync('/usr/bin/python3', [script, model, String(width), String(size), '7', '0.01', src, dst, reference], {
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        const theirs = loadSafetensors(dst).tensors;
        assert.ok(Math.abs(Number(theirs['loss']!.data[0]) - m!.loss) < 1e-4, `loss ${m!.loss} vs ${theirs['loss']!.data[0]}`);
        for (const name of order) {
          const a = s.params.get(name)!;
          const b = theirs[name]!.data as Float32Array;
          const before = tensors[name]!.data as Float32Array;
          let worst = 0;
          let step = 0;
          for (let i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
            step = Math.max(step, Math.abs(b[i]! - before[i]!));
          }
          // Relative to the size of the update itself, so that a wrong gradient cannot hide under the weights.
          assert.ok(step > 0, `${name} did not move`);
          assert.ok(worst <= tol * step + 1e-7, `${name}: max |Δ| ${worst} for an update of ${step}`);
        }
        await s.release();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
