/**
 * `ilsvrc serve`: its flag is bounded, a busy port is one line, it answers only for the page's
 * files with the headers that make the page cross-origin isolated (so WebAssembly threads), never
 * for a path outside them, listens on 127.0.0.1 only, and a stop ends it within a second.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { MAIN } from '../../test/cli/run.js';
import { assertRefused, cli, type Case } from './harness.js';

/** A port that something else holds for the duration of `f`. */
async function withBusyPort<T>(f: (port: number) => Promise<T>): Promise<T> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  try {
    return await f((holder.address() as { port: number }).port);
  } finally {
    holder.close();
  }
}

/** `ilsvrc serve --port 0` until `f` is done, then SIGTERM: `f`'s value and the seconds the stop took. */
async function serving<T>(f: (base: string) => Promise<T>): Promise<{ value: T; stopSeconds: number; code: number | null }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const base = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (m) resolve(m[0]);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code} before listening`)));
  });
  try {
    const value = await f(base);
    const t0 = Date.now();
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const code = await exited;
    return { value, stopSeconds: (Date.now() - t0) / 1000, code };
  } finally {
    child.kill('SIGKILL');
  }
}

export const SERVE: Case[] = [
  {
    name: 'serve-flags',
    what: 'serve: a port out of range or not a number, or one in use',
    async run() {
      for (const p of ['70000', '-1', 'abc', '1.5'])
        assertRefused(await cli(['serve', '--port', p]), /--port/, /Expected a (port|non-negative integer)/);
      const line = await withBusyPort(async (port) => assertRefused(await cli(['serve', '--port', String(port)]), /in use/));
      return line;
    },
  },
  {
    name: 'serve-isolation',
    what: 'serve: COOP/COEP on the page, nothing outside it, a stop ends it',
    async run() {
      const { value, stopSeconds, code } = await serving(async (base) => {
        const page = await fetch(`${base}/`);
        assert.equal(page.status, 200);
        assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
        assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
        assert.match(await page.text(), /<script type="module" src="\/app.js">/);
        const wasm = await fetch(`${base}/ort/ort-wasm-simd-threaded.wasm`, { method: 'HEAD' });
        assert.equal(wasm.headers.get('content-type'), 'application/wasm');
        for (const path of [
          '/package.json',
          '/ort/../package.json',
          '/ort/%2e%2e%2fpackage.json',
          '/app.js/../../package.json',
          '/dist/web/app.js',
        ])
          assert.equal((await fetch(`${base}${path}`)).status, 404, path);
        assert.equal((await fetch(`${base}/`, { method: 'POST', body: 'x' })).status, 405);
        return base;
      });
      assert.equal(code, 130, 'a stopped serve exits 130');
      assert.ok(stopSeconds < 2, `stopped in ${stopSeconds} s`);
      return `${value}: headers set, 5 outside paths 404, stopped in ${stopSeconds.toFixed(2)} s`;
    },
  },
];
