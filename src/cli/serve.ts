/**
 * `ilsvrc serve`: the page that trains a zoo model in a browser tab (src/web/page.ts, bundled into
 * dist/web by scripts/build-web) and ONNX Runtime's WebAssembly files, on localhost only. The page
 * is cross-origin isolated (COOP/COEP), so ONNX Runtime may run its WebAssembly on threads.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { expected, UsageError } from '../util/errors.js';
import { StopSignal, stopOnSignals } from '../util/stop.js';
import { nonNegativeInt, reject } from './options.js';

/** The page's files: the build's bundle and page, and ONNX Runtime Web's modules and WebAssembly. */
const PAGE_DIR = dirname(fileURLToPath(new URL('../../web/index.html', import.meta.url)));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
};

/** Cross-origin isolation (SharedArrayBuffer, so WebAssembly threads) and nothing cached across builds. */
const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

/** The file a request path names: one of the page's own, or an ONNX Runtime Web module; anything else is none. */
function fileFor(path: string, ortDir: string): string | undefined {
  if (path === '/' || path === '/index.html') return join(PAGE_DIR, 'index.html');
  if (path === '/app.js') return join(PAGE_DIR, 'app.js');
  const ort = /^\/ort\/(ort[\w.-]*\.(?:mjs|wasm))$/.exec(path);
  return ort ? join(ortDir, ort[1]!) : undefined;
}

function handle(req: IncomingMessage, res: ServerResponse, ortDir: string): void {
  const reads = req.method === 'GET' || req.method === 'HEAD';
  const file = reads ? fileFor(new URL(req.url ?? '/', 'http://localhost').pathname, ortDir) : undefined;
  if (!file || !existsSync(file)) {
    res.writeHead(reads ? 404 : 405, { ...HEADERS, 'Content-Type': 'text/plain' });
    res.end(reads ? 'not found\n' : 'only GET and HEAD\n');
    return;
  }
  const body = readFileSync(file);
  res.writeHead(200, { ...HEADERS, 'Content-Type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** ONNX Runtime Web's folder of modules and WebAssembly, looked up when serving (the rest of the CLI runs without it). */
function ortFiles(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  } catch {
    throw expected('the onnxruntime-web package (npm install onnxruntime-web@1.30.0)', 'serve', 'none installed');
  }
}

function port(value: string): number {
  const n = nonNegativeInt(value);
  if (n > 65535) reject('a port in [0, 65535] (0: any free one)', value);
  return n;
}

async function serve(o: { port: number }): Promise<void> {
  if (!existsSync(join(PAGE_DIR, 'app.js'))) throw expected('the page bundle (npm run build)', 'serve', join(PAGE_DIR, 'app.js'));
  const ortDir = ortFiles();
  const server = createServer((req, res) => handle(req, res, ortDir));
  await new Promise<void>((resolve, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(
        e.code === 'EADDRINUSE' || e.code === 'EACCES'
          ? new UsageError(`Expected a free port for --port but ${o.port} is ${e.code === 'EACCES' ? 'not allowed' : 'in use'}`)
          : e,
      ),
    );
    server.listen(o.port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const at = typeof address === 'object' && address ? address.port : o.port;
  process.stdout.write(`serving the training page at http://127.0.0.1:${at}/ (Ctrl-C stops)\n`);
  const stop = new StopSignal();
  const disarm = stopOnSignals(stop);
  try {
    await stop.race(new Promise<never>(() => {}), 'serve');
  } finally {
    disarm();
    server.closeAllConnections();
    server.close();
  }
}

export function makeServeCommand(): Command {
  return new Command('serve')
    .description('serve the page that trains a model in a browser tab (localhost only)')
    .option('--port <n>', 'TCP port on 127.0.0.1 (default 8080; 0: any free one)', port, 8080)
    .action((f: { port: number }) => serve(f));
}
