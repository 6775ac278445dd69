/** The training graphs of every zoo model use only ops with CPU and CUDA kernels. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODELS } from '../../src/zoo/index.js';
import { toModel } from '../../src/graph/serialize.js';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import { opUses, unsupportedOps } from '../../src/runtime/providers.js';
import { buildTrainGraph } from '../../src/train/graphs.js';
import { loopModel } from '../../src/train/loop.js';

for (const spec of MODELS) {
  test(`${spec.name}: step and K-step training graphs run on CPU and CUDA kernels only`, (t) => {
    const tg = buildTrainGraph(
      {
        model: spec,
        modelOptions: { width: 1 / 16, classes: 10, aux: spec.hasAux ?? false },
        batch: 2,
        optimizer: DEFAULT_OPTIMIZER,
        labelSmoothing: 0.1,
        frozen: new Set(),
      },
      'step',
    );
    for (const model of [toModel(tg.graph, { paramsAsInputs: true }), loopModel(tg)]) {
      assert.deepEqual(unsupportedOps(model, 'cpu'), []);
      assert.deepEqual(unsupportedOps(model, 'cuda'), []);
    }
    const web = unsupportedOps(loopModel(tg), 'webgpu');
    assert.ok(web.includes('Loop') && web.includes('MaxPool:Indices'), 'the WebGPU gaps are detected');
    assert.ok(opUses(loopModel(tg)).get('ScatterElements'), 'max-pool gradients scatter');
    t.diagnostic(`WebGPU would run on the CPU: ${web.join(', ')}`);
  });
}
