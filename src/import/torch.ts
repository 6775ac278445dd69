/**
 * Weights of a PyTorch-style state dict saved as safetensors (torchvision, timm): `<module>.weight`
 * and `<module>.bias` per layer, and a batch norm's `running_mean` and `running_var` beside them, in
 * module order (the body, then the head). timm's VGG head keeps fc6 as a 7×7 convolution: the matcher
 * reads such a weight as the fully connected one it is.
 */
import { loadSafetensors } from '../runtime/safetensors.js';
import { UsageError } from '../util/errors.js';
import { checkedBn, type Source, type SourceLayer } from './source.js';

/**
 * Heads after the body: timm's and torchvision's classifier modules, in the order they run. Every
 * other top-level module is the body (torchvision's `features`, or GoogLeNet's conv1 … inception5b,
 * whose names sort in the order they run).
 */
const HEAD_RANK = ['pre_logits', 'classifier', 'head', 'fc'];

/** torchvision's auxiliary classifiers (GoogLeNet's aux1, aux2; Inception v3's AuxLogits): trained, not on the path to the output. */
const AUX = /^(aux\d*|auxlogits)$/i;

const BN_KEYS = ['weight', 'bias', 'running_mean', 'running_var'] as const;

function compareModules(a: string, b: string): number {
  const [pa, pb] = [a.split('.'), b.split('.')];
  const rank = (s: string) => HEAD_RANK.indexOf(s) + 1;
  const r = rank(pa[0]!) - rank(pb[0]!);
  if (r !== 0) return r;
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const [x, y] = [pa[i]!, pb[i]!];
    if (x === y) continue;
    const [nx, ny] = [Number(x), Number(y)];
    if (Number.isInteger(nx) && Number.isInteger(ny)) return nx - ny;
    // torchvision's BasicConv2d: its `conv` runs before its `bn`, though the names sort the other way.
    if (x === 'conv' && y === 'bn') return -1;
    if (x === 'bn' && y === 'conv') return 1;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

type Group = Partial<Record<(typeof BN_KEYS)[number], string>>;

export function readStateDict(file: string): Source {
  const st = loadSafetensors(file);
  const groups = new Map<string, Group>();
  for (const key of Object.keys(st.tensors)) {
    const m = /^(.*)\.(weight|bias|running_mean|running_var|num_batches_tracked)$/.exec(key);
    if (!m)
      throw new UsageError(
        `Expected only <layer>.weight, .bias, .running_mean, .running_var and .num_batches_tracked tensors in ${file} but received ${JSON.stringify(key)}`,
      );
    // The count of batches a batch norm has seen sets its update only under momentum=None (a cumulative
    // average); torchvision's models use momentum 0.1, so it changes nothing and is not kept.
    if (m[2] === 'num_batches_tracked') continue;
    const g = groups.get(m[1]!) ?? {};
    g[m[2] as keyof Group] = key;
    groups.set(m[1]!, g);
  }
  const floats = (key: string): Float32Array => {
    const t = st.tensors[key]!;
    if (t.dtype === 'F32') return t.data;
    if (t.dtype === 'F64') return Float32Array.from(t.data);
    throw new UsageError(`Expected float32 or float64 for ${key} in ${file} but received ${t.dtype}`);
  };
  const layers: SourceLayer[] = [];
  const unused: string[] = [];
  for (const prefix of [...groups.keys()].sort(compareModules)) {
    const g = groups.get(prefix)!;
    if (AUX.test(prefix.split('.')[0]!)) {
      if (g.weight !== undefined) unused.push(g.weight);
      continue;
    }
    const isBn = g.running_mean !== undefined || g.running_var !== undefined;
    for (const k of isBn ? BN_KEYS : (['weight'] as const))
      if (g[k] === undefined) throw new UsageError(`Expected ${prefix}.${k} beside ${Object.values(g)[0]} in ${file} but received none`);
    if (isBn) {
      const conv = layers[layers.length - 1];
      if (!conv || conv.shape.length !== 4 || conv.bn)
        throw new UsageError(
          `Expected a convolution before batch norm ${prefix} in ${file} but received ${conv?.bn ? 'another batch norm' : 'none'}`,
        );
      const [weight, bias, mean, variance] = BN_KEYS.map((k) => floats(g[k]!)) as [Float32Array, Float32Array, Float32Array, Float32Array];
      conv.bn = checkedBn({ name: prefix, weight, bias, mean, variance }, conv.shape[0]!, {
        file,
        conv: conv.name,
        names: BN_KEYS.map((k) => g[k]!),
      });
      continue;
    }
    layers.push({
      name: g.weight!,
      weight: floats(g.weight!),
      shape: [...st.tensors[g.weight!]!.shape],
      bias: g.bias === undefined ? undefined : floats(g.bias),
      ...(g.bias === undefined ? {} : { biasName: g.bias }),
    });
  }
  return { format: 'safetensors', layers, lrn: [], normAfterPool: false, pool: undefined, inputShape: undefined, unused };
}
