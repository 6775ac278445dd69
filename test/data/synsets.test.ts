/** ImageNet-1k's class list shipped with the package, checked against known indices of the standard order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imagenet1k, imagenet1kClasses } from '../../src/data/synsets.js';

test('ImageNet-1k: 1 000 synsets sorted by id, with the words Caffe, torchvision and the ONNX zoo index by', () => {
  const { wnids, words } = imagenet1k();
  const classes = imagenet1kClasses();
  assert.equal(wnids.length, 1000);
  assert.equal(new Set(wnids).size, 1000);
  assert.deepEqual([...wnids].sort(), wnids);
  const anchors: [number, string, string][] = [
    [0, 'n01440764', 'tench, Tinca tinca'],
    [1, 'n01443537', 'goldfish, Carassius auratus'],
    [207, 'n02099601', 'golden retriever'],
    [281, 'n02123045', 'tabby, tabby cat'],
    [285, 'n02124075', 'Egyptian cat'],
    [409, 'n02708093', 'analog clock'],
    [505, 'n03063689', 'coffeepot'],
    [948, 'n07742313', 'Granny Smith'],
    [999, 'n15075141', 'toilet tissue, toilet paper, bathroom tissue'],
  ];
  for (const [k, wnid, w] of anchors) {
    assert.equal(wnids[k], wnid, `index ${k}`);
    assert.equal(words.get(wnid), w);
  }
  assert.equal(classes[281], 'n02123045 tabby');
  assert.equal(classes[999], 'n15075141 toilet tissue');
});
