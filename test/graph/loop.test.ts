/** The graph builder's Loop: a body Graph wired by identity, serialised to a standard ONNX Loop. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Graph, GraphError, type Value } from '../../src/graph/graph.js';
import { loop } from '../../src/ops/loop.js';
import { toModel } from '../../src/graph/serialize.js';
import { encodeModel, type GraphProto, type ModelProto } from '../../src/onnx/proto.js';
import { Add, Cast, Mul } from '../../src/ops/elementwise.js';
import { DEFAULT_OPTIMIZER } from '../../src/optim/optimizer.js';
import { DEFAULT_TABLE, lower } from '../../src/runtime/lower/index.js';
import { buildTrainGraph } from '../../src/train/graphs.js';
import { loopModel } from '../../src/train/loop.js';

const dir = mkdtempSync(join(tmpdir(), 'ilsvrc-loop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * total ← total + iteration·scale + offset, n times, scanning the iteration number: `scale` is an
 * outer constant and `offset` an outer input, both read from the body by identity.
 */
function counter(): ModelProto {
  const g = new Graph('counter');
  const n = g.input('n', 'int64', []);
  const total = g.input('total', 'float32', [1]);
  const offset = g.input('offset', 'float32', [1]);
  const scale = g.floats([2]);
  const out = loop(g, { trips: n, carried: [total], trip: { size: 1, symbol: 'K' } }, (body, { iteration, carried: [sum] }) => {
    const i = body.add1(Cast, [iteration], { to: 'float32' });
    const step = body.add1(Add, [body.add1(Mul, [i, scale], {}), offset], {});
    return { carried: [body.add1(Add, [sum!, step], {})], scans: [iteration] };
  });
  g.output(out.carried[0]!, 'total.next');
  g.output(out.scans[0]!, 'iterations');
  return toModel(g, { shapes: true });
}

/** Every name a graph and its subgraphs define (inputs, initializers, node outputs). */
function definedNames(gp: GraphProto, into: string[] = []): string[] {
  into.push(...gp.input.map((v) => v.name), ...(gp.initializer ?? []).map((t) => t.name));
  for (const n of gp.node) {
    into.push(...n.output.filter((o) => o));
    for (const a of n.attribute ?? []) if (a.g) definedNames(a.g, into);
  }
  return into;
}

test('a Loop summing a counter runs in ONNX Runtime, reading an outer input and an outer constant', async () => {
  const model = counter();
  const loopNode = model.graph.node.find((n) => n.opType === 'Loop')!;
  const body = loopNode.attribute?.find((a) => a.name === 'body')?.g;
  assert.ok(body, 'the body is a graph attribute');
  assert.equal(body.input.length, 3, 'iteration, condition, one carried value');
  assert.equal(body.output.length, 3, 'condition, one carried value, one scan');
  const names = definedNames(model.graph);
  assert.equal(new Set(names).size, names.length, 'no name is defined twice (body names shadow nothing)');
  const outerInits = (model.graph.initializer ?? []).map((t) => t.name);
  assert.ok(
    body.node.some((n) => n.input.some((x) => outerInits.includes(x))),
    'the body reads the outer constant by its outer name',
  );
  assert.ok(
    body.node.some((n) => n.input.includes('offset')),
    'the body reads the outer input by its outer name',
  );
  assert.deepEqual(model.graph.output.find((v) => v.name === 'iterations')?.type?.tensorType?.shape?.dim, [{ dimParam: 'K' }]);

  const s = await ort.InferenceSession.create(encodeModel(model));
  const r = await s.run({
    n: new ort.Tensor('int64', BigInt64Array.from([5n]), []),
    total: new ort.Tensor('float32', Float32Array.from([1]), [1]),
    offset: new ort.Tensor('float32', Float32Array.from([0.5]), [1]),
  });
  // 1 + 2·(0+1+2+3+4) + 5·0.5
  assert.deepEqual([...(r['total.next']!.data as Float32Array)], [23.5]);
  assert.deepEqual([...(r['iterations']!.data as BigInt64Array)], [0n, 1n, 2n, 3n, 4n]);
  await s.release();
});

test('a Loop body reading a value of no enclosing graph is a build-time error naming the value', () => {
  const stranger = new Graph('other').input('stranger', 'float32', [1]);
  const g = new Graph('g');
  const total = g.input('total', 'float32', [1]);
  const spec = { trips: g.ints([3], true), carried: [total], trip: { size: 3, symbol: 'K' } };
  assert.throws(
    () => loop(g, spec, (body, { carried: [sum] }) => ({ carried: [body.add1(Add, [sum!, stranger], {})], scans: [] })),
    (e: unknown) => e instanceof GraphError && e.message.includes('stranger') && e.message.includes('neither in this graph'),
  );
  assert.throws(
    () => loop(g, spec, () => ({ carried: [stranger], scans: [] })),
    (e: unknown) => e instanceof GraphError && e.message.includes('body output stranger'),
  );
  // An outer value may share its name with one of the body's own inputs.
  const cond = g.input('cond', 'float32', [1]);
  loop(g, { ...spec, carried: [cond] }, (body, { carried: [c] }) => ({ carried: [body.add1(Add, [c!, c!], {})], scans: [] }));
  // A value of one Loop's body is not in scope in a sibling Loop's body.
  let inner: Value | undefined;
  loop(g, spec, (body, { carried: [sum] }) => {
    inner = body.add1(Add, [sum!, sum!], {});
    return { carried: [inner], scans: [] };
  });
  assert.throws(
    () => loop(g, spec, (body, { carried: [sum] }) => ({ carried: [body.add1(Add, [sum!, inner!], {})], scans: [] })),
    (e: unknown) => e instanceof GraphError && e.message.includes('Add') && e.message.includes('neither in this graph'),
  );
});

test('the Loop models pass the ONNX checker (python3-onnx)', (t) => {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    t.skip('python3-onnx not installed');
    return;
  }
  const tg = buildTrainGraph(
    {
      model: 'nin',
      modelOptions: { width: 1 / 16, classes: 10 },
      batch: 2,
      optimizer: DEFAULT_OPTIMIZER,
      labelSmoothing: 0.1,
      frozen: new Set(['conv1.weight']),
    },
    'step',
  );
  // The step's composite gradient nodes are lowered to ONNX ops first, as every session does.
  const files = [counter(), lower(loopModel(tg), DEFAULT_TABLE, { block: 0 })].map((m, i) => {
    const file = join(dir, `loop${i}.onnx`);
    writeFileSync(file, encodeModel(m));
    return file;
  });
  const script = [
    'import sys, onnx',
    'for f in sys.argv[1:]:',
    '    onnx.checker.check_model(onnx.load(f), full_check=True)',
    'print("checked", len(sys.argv) - 1)',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script, ...files], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /checked 2/);
});
