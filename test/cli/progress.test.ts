import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatDuration,
  formatField,
  formatPercent,
  formatRate,
  Progress,
  type ProgressStream,
  renderBar,
  renderLine,
} from '../../src/cli/progress.js';

class FakeStream implements ProgressStream {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

/** A clock the test moves by hand. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

test('formatDuration', () => {
  assert.equal(formatDuration(0), '00:00');
  assert.equal(formatDuration(62), '01:02');
  assert.equal(formatDuration(59.6), '01:00');
  assert.equal(formatDuration(3723), '1:02:03');
  assert.equal(formatDuration(100 * 3600), '100:00:00');
  assert.equal(formatDuration(NaN), '--:--');
  assert.equal(formatDuration(Infinity), '--:--');
  assert.equal(formatDuration(-1), '--:--');
});

test('formatRate', () => {
  assert.equal(formatRate(512.34, 'img'), '512.3 img/s');
  assert.equal(formatRate(12345.6, 'img'), '12346 img/s');
  assert.equal(formatRate(0.05, 'step'), '20.0 s/step');
  assert.equal(formatRate(0, 'img'), '-- img/s');
  assert.equal(formatRate(NaN, 'img'), '-- img/s');
});

test('renderBar', () => {
  assert.equal(renderBar(0.5, 10), '[#####.....]');
  assert.equal(renderBar(0, 4), '[....]');
  assert.equal(renderBar(1, 4), '[####]');
  assert.equal(renderBar(0.3, 10), '[###.......]');
  assert.equal(renderBar(2, 3), '[###]');
  assert.equal(renderBar(NaN, 3), '[...]');
});

test('fields and the whole line', () => {
  assert.equal(formatField(0.42131), '0.4213');
  assert.equal(formatField(12), '12');
  assert.equal(formatField(1.5e-5), '1.50e-5');
  assert.equal(formatField('91.2%'), '91.2%');
  assert.equal(formatPercent(0.912), '91.2%');
  const line = renderLine({
    label: 'train',
    done: 123,
    total: 456,
    rate: 512.3,
    unit: 'img',
    barWidth: 10,
    fields: { loss: 0.4213, acc: formatPercent(0.912) },
  });
  assert.equal(line, 'train [##........] 123/456 26% 512.3 img/s ETA 00:01 loss 0.4213 acc 91.2%');
  assert.equal(renderLine({ label: '', done: 7, rate: 0, unit: 'step', barWidth: 10, fields: {} }), '7 -- step/s');
  assert.equal(
    renderLine({ label: 'eval', done: 10, total: 10, rate: 2, unit: 'img', barWidth: 4, fields: {}, elapsedSecs: 5 }),
    'eval [####] 10/10 100% 2.0 img/s in 00:05',
  );
});

test('not a terminal: a plain line every interval and a final one, no carriage returns', () => {
  const stream = new FakeStream(false);
  const c = clock();
  const p = new Progress({ total: 2500, label: 'epoch 1', unit: 'img', stream, now: c.now });
  for (let i = 1; i <= 250; i++) {
    c.advance(100);
    p.update(i * 10, { loss: 1 / i });
  }
  p.finish({ acc: '90.0%' });
  const lines = stream.text.split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, 3, stream.text); // at 10 s, 20 s, and the final line
  assert.ok(!stream.text.includes('\r'));
  assert.ok(!stream.text.includes('\x1b'));
  assert.ok(stream.chunks.every((c) => c.endsWith('\n')));
  assert.match(lines[0] ?? '', /^epoch 1 \[########\.{12}\] 1000\/2500 40% 100\.0 img\/s ETA 00:15 loss 0\.01000$/);
  assert.equal(lines[2], 'epoch 1 [####################] 2500/2500 100% 100.0 img/s in 00:25 loss 0.004000 acc 90.0%');
  p.update(1);
  p.finish();
  assert.equal(stream.chunks.length, 3, 'nothing after finish');
});

test('terminal: redraws in place at most every 100 ms, ends with a newline', () => {
  const stream = new FakeStream(true, 200);
  const c = clock();
  const p = new Progress({ total: 100, label: 'val', unit: 'img', stream, now: c.now });
  for (let i = 1; i <= 100; i++) {
    c.advance(10);
    p.update(i);
  }
  p.finish();
  const draws = stream.chunks.length - 1;
  assert.ok(draws >= 9 && draws <= 11, `${draws} redraws in 1 s`);
  assert.ok(stream.chunks.every((s) => s.startsWith('\r')));
  assert.ok(stream.chunks.slice(0, -1).every((s) => !s.includes('\n')));
  assert.ok(stream.chunks.at(-1)?.endsWith('\x1b[K\n'));
  assert.match(stream.chunks.at(-1) ?? '', /val \[#{20}\] 100\/100 100% 100\.0 img\/s in 00:01/);
});

test('terminal: lines are cut to the width, and log() keeps the bar intact', () => {
  const stream = new FakeStream(true, 40);
  const c = clock();
  const p = new Progress({ total: 1000, label: 'a long label for this run', stream, now: c.now });
  c.advance(200);
  p.update(10, { loss: 2.5 });
  const drawn = (stream.chunks.at(-1) ?? '').replace('\r', '').replace('\x1b[K', '');
  assert.equal(drawn.length, 39);
  p.log('checkpoint saved');
  assert.equal(stream.chunks.at(-1), `\r\x1b[Kcheckpoint saved\n${drawn}`);
  p.finish();
  p.log('after');
  assert.equal(stream.chunks.at(-1), 'after\n');
});

test('the rate is smoothed over time and gives the ETA', () => {
  const stream = new FakeStream(false);
  const c = clock();
  const p = new Progress({ total: 100_000, stream, now: c.now, smoothingSecs: 2 });
  let done = 0;
  for (let i = 0; i < 50; i++) {
    c.advance(100);
    p.update((done += 10));
  }
  assert.ok(Math.abs(p.rate - 100) < 1e-9);
  // The speed doubles: the rate moves towards 200 without jumping there.
  c.advance(100);
  p.update((done += 20));
  assert.ok(p.rate > 100 && p.rate < 110, String(p.rate));
  for (let i = 0; i < 200; i++) {
    c.advance(100);
    p.update((done += 20));
  }
  assert.ok(Math.abs(p.rate - 200) < 1, String(p.rate));
  // Several updates in the same millisecond count once time moves.
  p.update((done += 5));
  p.update((done += 5));
  c.advance(100);
  p.update((done += 10));
  assert.ok(Math.abs(p.rate - 200) < 1, String(p.rate));
});

test('resumed work: items done before the start do not inflate the rate', () => {
  const stream = new FakeStream(false);
  const c = clock();
  const p = new Progress({ total: 1000, start: 900, unit: 'step', stream, now: c.now });
  c.advance(10_000);
  p.update(950);
  assert.equal(p.rate, 5);
  p.finish();
  assert.match(stream.text, /950\/1000 95% 5\.0 step\/s ETA 00:10\n.*950\/1000 95% 5\.0 step\/s in 00:10\n$/);
});
