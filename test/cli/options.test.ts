import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { report } from '../../src/cli/main.js';
import {
  addModelOptions,
  choice,
  errorLine,
  modelOptionsFrom,
  nonNegativeFloat,
  nonNegativeInt,
  opset,
  positiveFloat,
  positiveInt,
  rate,
  seed,
  type ModelFlags,
} from '../../src/cli/options.js';
import { UsageError } from '../../src/util/errors.js';

function rejects(parse: (v: string) => unknown, value: string, message: string): void {
  assert.throws(
    () => parse(value),
    (e: unknown) => e instanceof InvalidArgumentError && e.message === message,
  );
}

test('number parsers accept every finite number Number() reads, and nothing else', () => {
  assert.equal(positiveInt('12'), 12);
  assert.equal(positiveInt(' 7 '), 7);
  assert.equal(positiveInt('1e3'), 1000);
  assert.equal(positiveInt('0x10'), 16);
  assert.equal(positiveFloat('1e-3'), 0.001);
  assert.equal(positiveFloat('2.5E+2'), 250);
  assert.equal(nonNegativeFloat('0e0'), 0);
  assert.equal(nonNegativeFloat('5e-4'), 0.0005);
  assert.equal(nonNegativeInt('0'), 0);
  rejects(nonNegativeInt, '-1', 'Expected a non-negative integer but received "-1"');
  rejects(nonNegativeFloat, '-1e-9', 'Expected a non-negative number but received "-1e-9"');
  for (const bad of ['0', '-1', '2.5', '1e-3', '', ' ', 'ten', 'Infinity', '1e400', '9007199254740993']) {
    rejects(positiveInt, bad, `Expected a positive integer but received ${JSON.stringify(bad)}`);
  }
  assert.equal(positiveFloat('0.125'), 0.125);
  assert.equal(positiveFloat('.5'), 0.5);
  rejects(positiveFloat, '0', 'Expected a positive number but received "0"');
  rejects(positiveFloat, 'NaN', 'Expected a positive number but received "NaN"');
  assert.equal(rate('0'), 0);
  assert.equal(rate('0.7'), 0.7);
  rejects(rate, '1', 'Expected a rate in [0, 1) but received "1"');
  assert.equal(seed('0'), 0);
  assert.equal(seed('4294967295'), 4294967295);
  rejects(seed, '4294967296', 'Expected an integer in [0, 4294967295] but received "4294967296"');
});

test('choice and opset', () => {
  const init = choice(['paper', 'kaiming'] as const);
  assert.equal(init('kaiming'), 'kaiming');
  rejects(init, 'Kaiming', 'Expected one of paper, kaiming but received "Kaiming"');
  assert.equal(opset('17'), 17);
  assert.equal(opset('18'), 18);
  rejects(opset, '12', 'Expected 17 or 18 but received "12"');
});

test('model flags: declared once, absent ones stay absent', async () => {
  let got: ModelFlags = {};
  const cmd = addModelOptions(new Command('x').exitOverride()).action((f: ModelFlags) => {
    got = f;
  });
  await cmd.parseAsync(['--width', '0.5', '--input-size', '64', '--aux', '--init', 'kaiming'], { from: 'user' });
  assert.deepEqual(modelOptionsFrom(got), { width: 0.5, inputSize: 64, aux: true, init: 'kaiming' });
});

test('errorLine names the flag in the sentence and keeps one line', () => {
  const err = (message: string) => new CommanderError(1, 'commander.x', message);
  assert.equal(
    errorLine(err(`error: option '--classes <n>' argument '2.5' is invalid. Expected a positive integer but received "2.5"`)),
    'Expected a positive integer for --classes but received "2.5"',
  );
  assert.equal(errorLine(err(`error: option '-o, --output <file>' argument 'x' is invalid. not writable`)), '--output: not writable');
  assert.equal(
    errorLine(err("error: unknown option '--wdth'\n(Did you mean --width?)")),
    "unknown option '--wdth' (Did you mean --width?)",
  );
});

test('report: usage mistakes exit 2 in one line; bugs exit 1, with the stack only under debug', () => {
  const out: string[] = [];
  const write = (t: string) => void out.push(t);
  assert.equal(report(new UsageError('Expected a thing for --x but received 3'), false, write), 2);
  assert.deepEqual(out.splice(0), ['ilsvrc: Expected a thing for --x but received 3\n']);
  assert.equal(report(new TypeError('boom'), false, write), 1);
  assert.match(out[0] ?? '', /^ilsvrc: internal error: boom\n/);
  assert.doesNotMatch(out.splice(0).join(''), /^\s+at /m);
  assert.equal(report(new TypeError('boom'), true, write), 1);
  assert.match(out.splice(0).join(''), /^TypeError: boom\n\s+at /);
  assert.equal(report(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), false, write), 0);
  assert.deepEqual(out, []);
});

test('report: the user disk and permission failures exit 2 naming the file; other system errors stay bugs', () => {
  const out: string[] = [];
  const write = (t: string) => void out.push(t);
  const errno = (code: string, syscall: string, path: string): Error =>
    Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path, errno: -1 });
  assert.equal(report(errno('ENOSPC', 'write', '/tmp/run/metrics.jsonl'), false, write), 2);
  assert.deepEqual(out.splice(0), ['ilsvrc: cannot write /tmp/run/metrics.jsonl: no space left on device (ENOSPC)\n']);
  assert.equal(report(errno('EACCES', 'open', '/data/x.png'), false, write), 2);
  assert.deepEqual(out.splice(0), ['ilsvrc: cannot read /data/x.png: permission denied (EACCES)\n']);
  assert.equal(report(errno('EINVAL', 'read', '/x'), false, write), 1);
  assert.match(out.splice(0).join(''), /internal error/);
});
