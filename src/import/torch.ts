/**
 * Weights of a PyTorch-style state dict saved as safetensors (torchvision, timm): `<module>.weight`
 * and `<module>.bias` per layer, in module order (features, then the classifier). timm's VGG head
 * keeps fc6 as a 7×7 convolution: the matcher reads such a weight as the fully connected one it is.
 */
import { loadSafetensors } from '../runtime/safetensors.js';
import { UsageError } from '../util/errors.js';
import type { Source, SourceLayer } from './source.js';

/** Module order of torchvision's and timm's VGG and AlexNet: body, then head. */
const MODULE_RANK = ['features', 'pre_logits', 'classifier', 'head', 'fc'];

function compareModules(a: string, b: string): number {
  const [pa, pb] = [a.split('.'), b.split('.')];
  const rank = (s: string) => (MODULE_RANK.includes(s) ? MODULE_RANK.indexOf(s) : MODULE_RANK.length);
  const r = rank(pa[0]!) - rank(pb[0]!);
  if (r !== 0) return r;
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const [x, y] = [pa[i]!, pb[i]!];
    if (x === y) continue;
    const [nx, ny] = [Number(x), Number(y)];
    if (Number.isInteger(nx) && Number.isInteger(ny)) return nx - ny;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

export function readStateDict(file: string): Source {
  const st = loadSafetensors(file);
  const groups = new Map<string, { weight?: string; bias?: string }>();
  for (const key of Object.keys(st.tensors)) {
    const m = /^(.*)\.(weight|bias)$/.exec(key);
    if (!m)
      throw new UsageError(
        `Expected only <layer>.weight and <layer>.bias tensors in ${file} (a state dict without batch norm) but received ${JSON.stringify(key)}`,
      );
    const g = groups.get(m[1]!) ?? {};
    g[m[2] as 'weight' | 'bias'] = key;
    groups.set(m[1]!, g);
  }
  const floats = (key: string): Float32Array => {
    const t = st.tensors[key]!;
    if (t.dtype === 'F32') return t.data;
    if (t.dtype === 'F64') return Float32Array.from(t.data);
    throw new UsageError(`Expected float32 or float64 for ${key} in ${file} but received ${t.dtype}`);
  };
  const layers: SourceLayer[] = [];
  for (const prefix of [...groups.keys()].sort(compareModules)) {
    const g = groups.get(prefix)!;
    if (g.weight === undefined) throw new UsageError(`Expected ${prefix}.weight beside ${prefix}.bias in ${file} but received none`);
    layers.push({
      name: g.weight,
      weight: floats(g.weight),
      shape: [...st.tensors[g.weight]!.shape],
      bias: g.bias === undefined ? undefined : floats(g.bias),
      ...(g.bias === undefined ? {} : { biasName: g.bias }),
    });
  }
  return { format: 'safetensors', layers, lrn: [], normAfterPool: false, pool: undefined, inputShape: undefined, unused: [] };
}
