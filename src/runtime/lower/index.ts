/**
 * Each provider's lowerings, one table per provider: a table is a list of stages, each a list of
 * rules (rule.ts) tried in order on every node. Composites (the ai.ilsvrc nodes gradient rules emit)
 * are written out first, in the forms the provider runs fastest; then the provider's own kernels.
 * Adding a lowering is one rule file and one line here.
 */
import type { ModelProto } from '../../onnx/proto.js';
import type { Provider } from '../providers.js';
import { convInputGrad } from './conv-input-grad.js';
import { convWeightGrad } from './conv-weight-grad.js';
import { maxPoolGradScatter } from './max-pool-grad.js';
import { maxUnpool } from './max-unpool.js';
import { nchwcBlockSize, nchwcConv } from './nchwc-conv.js';
import { lower, type LowerParams, type Table } from './rule.js';
import { sumAsAdds } from './sum-as-adds.js';

/** Every composite as standard ONNX ops that any provider runs. */
export const COMPOSITES = [convInputGrad, convWeightGrad, maxPoolGradScatter] as const;

/** What any provider runs: the composites written out, nothing else. */
export const DEFAULT_TABLE: Table = [COMPOSITES];

export const TABLES: Readonly<Record<Provider, Table>> = {
  // MaxUnpool and the NCHWc kernels exist on the CPU provider only.
  cpu: [[maxUnpool, ...COMPOSITES], [nchwcConv]],
  cuda: DEFAULT_TABLE,
  // No Sum kernel on WebGPU.
  webgpu: [COMPOSITES, [sumAsAdds]],
};

/** The parameters the provider's lowerings take: the CPU's NCHWc block (0 with ILSVRC_NCHWC=0 or without those kernels). */
async function lowerParams(provider: Provider): Promise<LowerParams> {
  return { block: provider === 'cpu' ? await nchwcBlockSize() : 0 };
}

/** `model` as `provider` should run it. */
export async function lowerFor(model: ModelProto, provider: Provider, applied?: Map<string, number>): Promise<ModelProto> {
  return lower(model, TABLES[provider], await lowerParams(provider), applied);
}

export { composites, lower, runStage, COMPOSITE_DOMAIN, type LowerParams, type Rule, type Stage, type Table } from './rule.js';
export { NCHWC_DOMAIN, nchwcBlockSize, nchwcConvs } from './nchwc-conv.js';
