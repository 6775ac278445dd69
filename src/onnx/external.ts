/**
 * ONNX tensors kept in external-data files, brought into the model they belong to. The model's
 * file is what the user named; the locations inside it are checked by `readContained`.
 */
import { readContained } from '../util/contained.js';
import { UsageError } from '../util/errors.js';
import { DataLocation, type GraphProto, type ModelProto } from './proto.js';

/**
 * Brings every tensor kept in an external-data file (a regular file beside `file`, never outside its
 * folder: `readContained`) into the model as raw_data, so that what reads the model, ONNX Runtime
 * included, reads no file the user did not name. True when there was any.
 */
export function inlineExternalData(model: ModelProto, file: string): boolean {
  let any = false;
  const visit = (g: GraphProto): void => {
    const tensors = [...(g.initializer ?? []), ...(g.node ?? []).flatMap((n) => (n.attribute ?? []).flatMap((a) => (a.t ? [a.t] : [])))];
    for (const t of tensors) {
      if (t.dataLocation !== DataLocation.EXTERNAL) continue;
      const what = `tensor ${JSON.stringify(t.name)}`;
      const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
      const location = kv['location'];
      if (location === undefined) throw new UsageError(`Expected an external-data location for ${what} in ${file} but it has none`);
      const offset = kv['offset'] === undefined ? 0 : Number(kv['offset']);
      const length = kv['length'] === undefined ? undefined : Number(kv['length']);
      t.rawData = readContained(file, location, offset, length, `the values of ${what}`);
      t.dataLocation = DataLocation.DEFAULT;
      delete t.externalData;
      any = true;
    }
    for (const n of g.node ?? []) for (const a of n.attribute ?? []) if (a.g) visit(a.g);
  };
  visit(model.graph);
  return any;
}
