/**
 * Drives the training page in Debian's Chromium, headless, through playwright-core (which downloads
 * no browser): `ilsvrc serve` on a free port, one browser, closed with its server when done.
 */
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MAIN } from '../cli/run.js';

/** The browser: ILSVRC_CHROMIUM, or Debian's. */
export const CHROMIUM = process.env['ILSVRC_CHROMIUM'] || '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function noBrowser(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (Debian: apt-get install chromium; or set ILSVRC_CHROMIUM)`;
}

export interface Session {
  url: string;
  browser: Browser;
  page: Page;
  close(): Promise<void>;
}

/** `ilsvrc serve --port 0` and the URL it prints. */
function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) resolve({ url: m[0], child });
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`ilsvrc serve exited ${code}: ${err}`)));
  });
}

/** A served page open in a fresh headless Chromium; `close` ends the browser and the server. */
export async function openPage(): Promise<Session> {
  const { url, child } = await startServer();
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const b = browser;
    return {
      url,
      browser: b,
      page,
      close: async () => {
        await b.close();
        child.kill('SIGTERM');
      },
    };
  } catch (e) {
    await browser?.close();
    child.kill('SIGTERM');
    throw e;
  }
}

/** What the page shows (window.ilsvrcPage), as far as the tests and the benchmark read it. */
export interface Shown {
  state: string;
  losses: number[];
  top1: number | null;
  valImages: number;
  imagesPerSecond: number | null;
  threads: number;
  backend: string;
  error: string;
}

export const shown = (s: Session): Promise<Shown> => s.page.evaluate(() => (globalThis as unknown as { ilsvrcPage: Shown }).ilsvrcPage);

/** Fills the form as a user would, picks WebAssembly, presses Train and waits for the run to end (or a mistake). */
export async function trainOnPage(s: Session, fields: Readonly<Record<string, string>>, timeout = 240_000): Promise<Shown> {
  for (const [id, v] of Object.entries(fields)) await s.page.fill(`#${id}`, v);
  await s.page.selectOption('#backend', 'wasm');
  await s.page.click('#train');
  await s.page.waitForFunction(
    () => {
      const p = (globalThis as unknown as { ilsvrcPage: Shown }).ilsvrcPage;
      return p.state === 'done' || p.error !== '';
    },
    null,
    { timeout },
  );
  return shown(s);
}
