/** The training graphs of every zoo model, lowered for each provider, use only ops with CPU and CUDA kernels. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODELS } from '../../src/zoo/index.js';
import { toModel } from '../../src/graph/serialize.js';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import { composites, lower, lowerFor, TABLES } from '../../src/runtime/lower/index.js';
import { opUses, unsupportedOps } from '../../src/runtime/providers.js';
import { buildTrainGraph } from '../../src/train/graphs.js';
import { loopModel } from '../../src/train/loop.js';

for (const spec of MODELS) {
  test(`${spec.name}: step and K-step training graphs run on CPU and CUDA kernels only`, async (t) => {
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
      assert.ok(composites(model).includes('MaxPoolGrad') && composites(model).includes('ConvWeightGrad'));
      const cpu = await lowerFor(model, 'cpu');
      const cuda = lower(model, TABLES.cuda, { block: 0 });
      assert.deepEqual([...composites(cpu), ...composites(cuda)], []);
      assert.deepEqual(unsupportedOps(cpu, 'cpu'), []);
      assert.deepEqual(unsupportedOps(cuda, 'cuda'), []);
    }
    const webModel = lower(loopModel(tg), TABLES.webgpu, { block: 0 });
    const web = unsupportedOps(webModel, 'webgpu');
    assert.ok(web.includes('Loop') && web.includes('MaxPool:Indices'), 'the WebGPU gaps are detected');
    assert.ok(opUses(webModel).get('ScatterElements'), 'max-pool gradients scatter');
    assert.ok(!opUses(webModel).get('Sum'), 'no Sum on WebGPU');
    t.diagnostic(`WebGPU would run on the CPU: ${web.join(', ')}`);
  });
}
