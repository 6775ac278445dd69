/**
 * ONNX Loop as a node of the graph builder: the body is a `Graph` whose `outer` is the graph that
 * holds the Loop, so the body reads outer values by identity (outer-scope references) and names are
 * generated only when the model is serialised (the body becomes the Loop's GraphProto attribute).
 */
import { Identity } from './elementwise.js';
import { Reshape } from './shape.js';
import { type NoAttrs, req } from './util.js';
import { liveNodes } from '../graph/serialize.js';
import { attr, Graph, GraphError, Value, type AnyNode, type OnnxAttrs, type OpDef, type Window } from '../graph/graph.js';

interface LoopSpec {
  /** The trip count: an int64 scalar of the enclosing graph; undefined runs until the body's condition is false. */
  trips?: Value | undefined;
  /** The first condition (bool scalar); undefined: true. */
  cond?: Value | undefined;
  /** Initial values of the loop-carried values. */
  carried: readonly Value[];
  /**
   * The trip count as built (the scan outputs' leading dimension in shape rules) and the symbolic
   * name written for it, since one model serves any number of trips.
   */
  trip: { size: number; symbol: string };
}

/** The body's inputs: the iteration number (int64 scalar), the condition (bool scalar), the carried values. */
interface LoopInputs {
  iteration: Value;
  cond: Value;
  /** Named after the initial values; the serialiser makes each name unique in the model. */
  carried: Value[];
}

/** What one iteration makes: the next carried values, per-iteration scan values, and optionally the next condition. */
interface LoopOutputs {
  carried: readonly Value[];
  scans: readonly Value[];
  cond?: Value;
}

class LoopNode implements AnyNode {
  readonly op = 'Loop';
  readonly domain = undefined;
  readonly global = false;
  readonly optionalOutputs = false;
  readonly differentiable = false;
  readonly outputs: Value[] = [];
  constructor(
    readonly inputs: readonly (Value | undefined)[],
    readonly body: Graph,
    readonly captures: readonly Value[],
    readonly scope: string,
    private readonly trips: number,
  ) {}

  onnxAttrs(): OnnxAttrs {
    return { body: attr.graph(this.body) };
  }
  macs(): number {
    return this.trips * this.body.macs();
  }
  window(): Window | undefined {
    return undefined;
  }
  vjp(): (Value | undefined)[] {
    throw new GraphError(this.scope, 'Loop has no gradient rule');
  }
}

/** Values of graphs enclosing `body` that its live nodes read, directly or through nested Loops, in first-use order. */
function capturesOf(body: Graph): Value[] {
  const out = new Set<Value>();
  const note = (v: Value | undefined): void => {
    if (v && v.graph !== body) out.add(v);
  };
  for (const n of liveNodes(body, body.outputs)) {
    n.inputs.forEach(note);
    n.captures?.forEach(note);
  }
  body.outputs.forEach(note);
  return [...out];
}

/**
 * A Loop in `g`: `build` fills the body (a new graph enclosed by `g`) from its inputs and returns
 * what one iteration makes. Returns the final carried values and the stacked scan outputs
 * ([trips, ...per-iteration shape]). A body value defined neither in the body nor in an enclosing
 * graph is a GraphError naming it.
 */
export function loop(
  g: Graph,
  spec: LoopSpec,
  build: (body: Graph, inputs: LoopInputs) => LoopOutputs,
): { carried: Value[]; scans: Value[] } {
  const scope = g.scopeName;
  const fail = (message: string): never => {
    throw new GraphError(scope, `Loop: ${message}`);
  };
  for (const v of [spec.trips, spec.cond, ...spec.carried]) {
    if (v && !g.sees(v.graph)) fail(`${v} is defined neither in this graph nor in one that encloses it`);
  }
  const scalar = (v: Value | undefined, dtype: string, what: string): void => {
    if (v && (v.dtype !== dtype || v.rank !== 0)) fail(`expected ${dtype} scalar ${what} but received ${v}`);
  };
  scalar(spec.trips, 'int64', 'trip count');
  scalar(spec.cond, 'bool', 'condition');

  const body = new Graph('body', g);
  const inputs: LoopInputs = {
    iteration: body.input('iteration', 'int64', []),
    cond: body.input('cond', 'bool', []),
    carried: [],
  };
  for (const [i, v] of spec.carried.entries()) {
    const free = v.name !== undefined && !body.inputs.some((x) => x.name === v.name);
    inputs.carried.push(body.input(free ? v.name! : `carried_${i}`, v.dtype, v.shape));
  }
  const made = build(body, inputs);
  if (body.inputs.length !== 2 + spec.carried.length) fail('the body has inputs besides the iteration, condition and carried values');
  if (body.params.length) fail(`the body declares parameters (${body.params[0]!.name}); read them from the enclosing graph`);
  if (made.carried.length !== spec.carried.length) fail(`${spec.carried.length} carried values but the body makes ${made.carried.length}`);
  made.carried.forEach((v, i) => {
    const init = spec.carried[i]!;
    if (v.dtype !== init.dtype || v.shape.join() !== init.shape.join()) fail(`carried value ${i} enters as ${init} but leaves as ${v}`);
  });
  scalar(made.cond, 'bool', 'next condition');

  // Each body output is its own value made in the body: ONNX names each output once, and a body
  // input or an outer value passes through an Identity.
  const taken = new Set<Value>();
  const own = (v: Value): Value => {
    if (!body.sees(v.graph)) fail(`body output ${v} is defined neither in the body nor in a graph that encloses it`);
    const mine = v.graph === body && v.kind === 'node' && !taken.has(v) ? v : body.add1(Identity, [v], {});
    taken.add(mine);
    return mine;
  };
  body.outputs.push(own(made.cond ?? inputs.cond), ...made.carried.map(own), ...made.scans.map(own));

  const node = new LoopNode([spec.trips, spec.cond, ...spec.carried], body, capturesOf(body), scope, spec.trip.size);
  for (const v of made.carried) node.outputs.push(new Value(g, v.dtype, v.shape, 'node', node));
  for (const v of made.scans) {
    const out = new Value(g, v.dtype, [spec.trip.size, ...v.shape], 'node', node);
    out.symbols = [spec.trip.symbol];
    node.outputs.push(out);
  }
  g.nodes.push(node);
  const carried = node.outputs.slice(0, made.carried.length);
  return { carried, scans: node.outputs.slice(made.carried.length) };
}

/** The length of a value's leading axis as an int64 tensor of rank 1. */
const LeadingDim: OpDef<NoAttrs> = {
  type: 'Shape',
  infer(inputs) {
    const x = req(inputs, 0, 'data');
    if (x.rank === 0) throw new Error(`expected a value of rank 1 or more but received ${x}`);
    return [{ dtype: 'int64', shape: [1] }];
  },
  onnxAttrs: () => ({ start: attr.int(0), end: attr.int(1) }),
};

/** A trip count that runs once per slice of `stacked` along its leading axis (int64 scalar). */
export function tripCount(stacked: Value): Value {
  const g = stacked.graph;
  return g.add1(Reshape, [g.add1(LeadingDim, [stacked], {}), g.ints([])], {});
}
