/** `--device cpu | cuda[:N] | webgpu`, as the user wrote it. */
import { expected } from '../util/errors.js';
import type { Provider } from './providers.js';

export interface Device {
  kind: Provider;
  /** CUDA device ordinal (0 elsewhere). */
  id: number;
  /** As the user wrote it, for messages. */
  text: string;
}

/** Parses `cpu`, `cuda`, `cuda:N` or `webgpu` (the value of --device). */
export function parseDevice(text: string): Device {
  const t = text.trim().toLowerCase();
  if (t === 'cpu' || t === 'webgpu') return { kind: t, id: 0, text: t };
  const m = /^cuda(?::(\d{1,3}))?$/.exec(t);
  if (m) return { kind: 'cuda', id: m[1] === undefined ? 0 : Number(m[1]), text: t };
  throw expected('cpu, cuda, cuda:N or webgpu', '--device', text);
}
