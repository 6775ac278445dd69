/**
 * Golden figures of the zoo at the papers' configurations: parameter counts exactly, MACs within 1 %,
 * output shapes per stage, and receptive fields. Graphs are built without weights (parameters are
 * lazy), so full-width VGG-E costs milliseconds here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MODELS, buildModel } from '../../src/zoo/index.js';
import { summarize, type Summary } from '../../src/graph/summary.js';

/** From shared/DESIGN.md, "Reference figures" (parameters include biases). */
const GOLDEN: Record<string, { params: number; gmacs: number }> = {
  alexnet: { params: 60_965_224, gmacs: 0.724 },
  'alexnet-single': { params: 62_378_344, gmacs: 1.135 },
  zfnet: { params: 62_357_608, gmacs: 1.168 },
  nin: { params: 7_595_176, gmacs: 1.1 },
  googlenet: { params: 6_998_552, gmacs: 1.583 },
  'vgg-a': { params: 132_863_336, gmacs: 7.61 },
  'vgg-a-lrn': { params: 132_863_336, gmacs: 7.61 },
  'vgg-b': { params: 133_047_848, gmacs: 11.31 },
  'vgg-c': { params: 133_638_952, gmacs: 11.77 },
  'vgg-d': { params: 138_357_544, gmacs: 15.47 },
  'vgg-e': { params: 143_667_240, gmacs: 19.63 },
  // torchvision 0.14's vgg*_bn metadata (num_params; _ops in GMACs): running statistics are buffers, not counted.
  'vgg-a-bn': { params: 132_868_840, gmacs: 7.61 },
  'vgg-b-bn': { params: 133_053_736, gmacs: 11.31 },
  'vgg-d-bn': { params: 138_365_992, gmacs: 15.47 },
  'vgg-e-bn': { params: 143_678_248, gmacs: 19.63 },
  'alexnet-tv': { params: 61_100_840, gmacs: 0.714 }, // torchvision's alexnet: 61,100,840 (0.71 GFLOPS)
  'googlenet-tv': { params: 6_624_904, gmacs: 1.502 }, // torchvision's googlenet(aux_logits=False): 6,624,904 (1.50 GFLOPS)
};

function analyse(name: string, aux = false): Summary {
  const b = buildModel(name, { aux });
  return summarize(b.graph, { outputs: [b.logits, ...b.aux.map((a) => a.logits)] });
}

/** name → [output shape, rf, jump] of the layers asked for. */
function stages(s: Summary, names: readonly string[]): Record<string, [string, number, number]> {
  const out: Record<string, [string, number, number]> = {};
  for (const n of names) {
    const l = s.layers.find((x) => x.name === n);
    assert.ok(l, `layer ${n} is missing`);
    out[n] = [l.output.join('×'), l.rf, l.jump];
  }
  return out;
}

describe('parameter counts and MACs', () => {
  test('every registered model has golden figures (except the naive thought experiment)', () => {
    const names = MODELS.map((m) => m.name).filter((n) => n !== 'googlenet-naive');
    assert.deepEqual(names.sort(), Object.keys(GOLDEN).sort());
  });

  for (const [name, ref] of Object.entries(GOLDEN)) {
    test(`${name}: ${ref.params.toLocaleString('en-US')} params, ${ref.gmacs} GMACs`, () => {
      const b = buildModel(name);
      assert.equal(b.graph.paramCount(), ref.params);
      assert.equal(b.spec.numParams, ref.params, 'the spec states the same figure');
      const s = summarize(b.graph, { outputs: [b.logits] });
      assert.equal(s.params, ref.params, 'every parameter feeds the logits');
      const gmacs = s.macs / 1e9;
      assert.ok(Math.abs(gmacs - ref.gmacs) / ref.gmacs < 0.01, `${gmacs.toFixed(3)} GMACs vs ${ref.gmacs}`);
      assert.equal(s.macs, b.graph.macs());
    });
  }

  test("googlenet-tv with both auxiliary classifiers: torchvision's googlenet(aux_logits=True), 13,004,888", () => {
    const b = buildModel('googlenet-tv', { aux: true });
    assert.equal(b.graph.paramCount(), 13_004_888);
    assert.equal(analyse('googlenet-tv', true).params, 13_004_888);
    // At 96 px block 4a's map is 6×6: the heads' adaptive 4×4 pool takes torch's uneven cells (rows 0–1, 1–2, 3–4, 4–5).
    const small = buildModel('googlenet-tv', { aux: true, inputSize: 96 });
    assert.deepEqual(
      small.aux.map((a) => a.logits.shape),
      [
        [1, 1000],
        [1, 1000],
      ],
    );
  });

  test('googlenet with both auxiliary classifiers: 13,378,280', () => {
    const b = buildModel('googlenet', { aux: true });
    assert.equal(b.graph.paramCount(), 13_378_280);
    assert.equal(b.aux.length, 2);
    assert.deepEqual(
      b.aux.map((a) => a.weight),
      [0.3, 0.3],
    );
    const s = analyse('googlenet', true);
    assert.equal(s.params, 13_378_280);
    // Each head's 5×5/3 average pool adds 4·16 to its block's field (4a 171, 4d 363) and triples the jump;
    // the fields already exceed the 224 px image, so the FC layers keep them.
    assert.deepEqual(stages(s, ['loss1', 'loss2']), { loss1: ['1000', 235, 48], loss2: ['1000', 427, 48] });
  });

  test('aliases name the same models', () => {
    for (const [alias, name] of [
      ['vgg16', 'vgg-d'],
      ['vgg19', 'vgg-e'],
      ['VGG11', 'vgg-a'],
      ['inception-v1', 'googlenet'],
      ['vgg11_bn', 'vgg-a-bn'],
      ['vgg13-bn', 'vgg-b-bn'],
      ['VGG16_BN', 'vgg-d-bn'],
      ['vgg19_bn', 'vgg-e-bn'],
    ] as const) {
      assert.equal(buildModel(alias).spec.name, name);
    }
  });

  test('the batch-normalised VGGs have torchvision state dict names and shapes, buffers and source stated', () => {
    const b = buildModel('vgg11_bn');
    assert.equal(b.spec.source, 'torchvision 0.14 vgg11_bn');
    const named = (n: string) => b.graph.params.find((p) => p.name === n);
    for (const [suffix, buffer] of [
      ['weight', false],
      ['bias', false],
      ['running_mean', true],
      ['running_var', true],
    ] as const) {
      assert.deepEqual(named(`conv5_2_bn.${suffix}`)?.value.shape, [512]);
      assert.equal(named(`conv5_2_bn.${suffix}`)?.buffer, buffer);
    }
    // The conv keeps its bias, as torchvision's does.
    assert.deepEqual(named('conv1_1.bias')?.value.shape, [64]);
  });

  test('the naive GoogLeNet is much bigger than the real one, with the same output', () => {
    const naive = analyse('googlenet-naive');
    const real = analyse('googlenet');
    assert.ok(naive.params > 10 * real.params && naive.macs > 5 * real.macs);
    assert.deepEqual(naive.layers.at(-1)?.output, [1000]);
  });

  test('options change the counts the expected way', () => {
    // Only fc8 depends on the classes: (4096 + 1) weights and bias per class.
    assert.equal(buildModel('vgg-d', { classes: 10 }).graph.paramCount(), 138_357_544 - 990 * 4097);
    // conv1 sees one channel instead of three: 64·3·3 weights fewer per dropped channel.
    assert.equal(buildModel('vgg-d', { channels: 1 }).graph.paramCount(), 138_357_544 - 2 * 64 * 9);
    // A larger input only grows VGG's fc6 (the flattened map), so 256 px gives 8×8 instead of 7×7.
    assert.equal(buildModel('vgg-d', { inputSize: 256 }).graph.paramCount(), 138_357_544 + 512 * 15 * 4096);
    assert.ok(buildModel('alexnet', { width: 0.125 }).graph.paramCount() < 2_000_000);
  });
});

describe('output shapes and receptive fields per stage', () => {
  test('alexnet (227 px)', () => {
    // RF by hand: conv1 11 (jump 4); pool1 11+2·4 = 19 (8); conv2 19+4·8 = 51; pool2 51+2·8 = 67 (16);
    // conv3..5 +2·16 each: 99, 131, 163; pool5 163+2·16 = 195 (32); fc6 sees the whole 227 px.
    assert.deepEqual(stages(analyse('alexnet'), ['conv1', 'pool1', 'conv2', 'pool2', 'conv5', 'pool5', 'fc6', 'fc8']), {
      conv1: ['96×55×55', 11, 4],
      pool1: ['96×27×27', 19, 8],
      conv2: ['256×27×27', 51, 8],
      pool2: ['256×13×13', 67, 16],
      conv5: ['256×13×13', 163, 16],
      pool5: ['256×6×6', 195, 32],
      fc6: ['4096', 227, 32],
      fc8: ['1000', 227, 32],
    });
  });

  test('zfnet (224 px)', () => {
    // conv1 7 (2); pool1 7+2·2 = 11 (4); conv2 11+4·4 = 27 (8); pool2 27+2·8 = 43 (16).
    const s = analyse('zfnet');
    assert.deepEqual(stages(s, ['conv1', 'pool1', 'norm1', 'conv2', 'pool2', 'norm2', 'pool5']), {
      conv1: ['96×110×110', 7, 2],
      pool1: ['96×55×55', 11, 4],
      norm1: ['96×55×55', 11, 4], // the paper's Figure 3: normalised across maps after pooling
      conv2: ['256×26×26', 27, 8],
      pool2: ['256×13×13', 43, 16],
      norm2: ['256×13×13', 43, 16],
      pool5: ['256×6×6', 171, 32], // conv3..5: 43+3·2·16 = 139; pool5 3/2: 139+2·16 = 171
    });
    assert.deepEqual(
      s.layers.map((l) => l.name).filter((n) => /^(pool|norm)[12]$/.test(n)),
      ['pool1', 'norm1', 'pool2', 'norm2'],
    );
  });

  test('nin (224 px)', () => {
    const s = analyse('nin');
    assert.deepEqual(
      Object.fromEntries(Object.entries(stages(s, ['conv1', 'pool1', 'pool2', 'pool3', 'cccp8', 'pool4'])).map(([k, v]) => [k, v[0]])),
      { conv1: '96×54×54', pool1: '96×27×27', pool2: '256×13×13', pool3: '384×6×6', cccp8: '1000×6×6', pool4: '1000' },
    );
  });

  test('googlenet (224 px)', () => {
    // conv1 7/2: 7 (2); pool1 3/2: 11 (4); conv2 (1×1 then 3×3): 19; pool2 3/2: 27 (8);
    // 3a's widest branch is 5×5: 27+4·8 = 59; 3b: 91.
    assert.deepEqual(
      stages(analyse('googlenet'), [
        'conv1',
        'pool1',
        'conv2',
        'pool2',
        'inception_3a',
        'inception_3b',
        'pool3',
        'inception_4a',
        'inception_4e',
        'pool4',
        'inception_5b',
        'loss3',
      ]),
      {
        conv1: ['64×112×112', 7, 2],
        pool1: ['64×56×56', 11, 4],
        conv2: ['192×56×56', 19, 4],
        pool2: ['192×28×28', 27, 8],
        inception_3a: ['256×28×28', 59, 8],
        inception_3b: ['480×28×28', 91, 8],
        pool3: ['480×14×14', 107, 16],
        inception_4a: ['512×14×14', 171, 16],
        inception_4e: ['832×14×14', 427, 16],
        pool4: ['832×7×7', 459, 32],
        inception_5b: ['1024×7×7', 715, 32],
        loss3: ['1000', 715, 32],
      },
    );
  });

  test('vgg-d (224 px)', () => {
    // Each 3×3 adds 2·jump, each 2×2/2 pool adds jump and doubles it:
    // block1 3, 5 → pool 6 (2); block2 10, 14 → 16 (4); block3 24, 32, 40 → 44 (8);
    // block4 60, 76, 92 → 100 (16); block5 132, 164, 196 → pool5 212 (32).
    assert.deepEqual(stages(analyse('vgg-d'), ['conv1_2', 'pool1', 'conv3_3', 'pool4', 'conv5_3', 'pool5', 'fc6']), {
      conv1_2: ['64×224×224', 5, 1],
      pool1: ['64×112×112', 6, 2],
      conv3_3: ['256×56×56', 40, 4],
      pool4: ['512×14×14', 100, 16],
      conv5_3: ['512×14×14', 196, 16],
      pool5: ['512×7×7', 212, 32],
      fc6: ['4096', 224, 32],
    });
  });

  test('every VGG configuration ends its convolutions at 512×7×7', () => {
    for (const name of ['vgg-a', 'vgg-a-lrn', 'vgg-b', 'vgg-c', 'vgg-d', 'vgg-e', 'vgg-a-bn', 'vgg-e-bn']) {
      const s = analyse(name);
      assert.equal(s.layers.find((l) => l.name === 'pool5')?.output.join('×'), '512×7×7', name);
      assert.equal(s.layers.at(-1)?.output.join('×'), '1000', name);
    }
    // C's 1×1 convs add weights but no receptive field: conv3_3 (1×1) keeps conv3_2's field.
    const c = analyse('vgg-c');
    const rf = (n: string) => c.layers.find((l) => l.name === n)?.rf;
    assert.equal(rf('conv3_3'), rf('conv3_2'));
  });
});
