/** The words on a picture of a network: its title line, and class names where the model has them. */
import { basename } from 'node:path';
import type { Network } from './network.js';

/** A class by name when the model's file names its classes, else by index. */
export function className(net: Network, index: number): string {
  return net.classes?.[index] ?? String(index);
}

export const percent = (p: number): string => `${(100 * p).toFixed(1)}%`;

/** "vgg-a · conv4_2 · deconvnet · 00004.jpg · predicted triangle 99.9%": model, layer, mode, image, class. */
export function caption(
  net: Network,
  o: { layer: string; mode: string; image?: string | undefined; class?: { index: number; probability: number; what: string } },
): string {
  const parts = [net.name, o.layer, o.mode];
  if (o.image !== undefined) parts.push(basename(o.image));
  if (o.class) parts.push(`${o.class.what} ${className(net, o.class.index)} ${percent(o.class.probability)}`);
  return parts.join(' · ');
}
