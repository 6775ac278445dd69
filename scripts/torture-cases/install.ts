/**
 * Installing the package where NuGet cannot be reached: onnxruntime-node's install script fetches
 * its CUDA provider from there on linux/x64, and its failure failed the whole `npm install`. The
 * package's preinstall (install/cuda-opt-in.cjs) runs first, as npm runs every preinstall of a tree
 * before any postinstall, and makes that download opt-in. NuGet is made unreachable with a proxy on
 * a closed port (onnxruntime-node downloads through global-agent), so a download fails even where
 * the feed is reachable.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingCudaLibraries } from '../../src/runtime/cuda-libraries.js';
import { HANG_MS, type Case } from './harness.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export const DOWNLOADS_CUDA = process.platform === 'linux' && process.arch === 'x64';

/** A project holding the package's install/ and onnxruntime-node's package.json and scripts (their dependencies through NODE_PATH). */
export function installLayout(dir: string): { ort: string; bin: string; preinstall: string } {
  const ort = join(dir, 'node_modules', 'onnxruntime-node');
  mkdirSync(ort, { recursive: true });
  const from = join(ROOT, 'node_modules', 'onnxruntime-node');
  cpSync(join(from, 'package.json'), join(ort, 'package.json'));
  cpSync(join(from, 'script'), join(ort, 'script'), { recursive: true });
  cpSync(join(ROOT, 'install'), join(dir, 'node_modules', 'ilsvrc', 'install'), { recursive: true });
  const preinstall = join(dir, 'node_modules', 'ilsvrc', 'install', 'cuda-opt-in.cjs');
  return { ort, bin: join(ort, 'bin', 'napi-v6', process.platform, process.arch), preinstall };
}

/**
 * The environment npm gives a dependency's script in a user's project: none of this checkout's npm
 * settings or install flags, NuGet unreachable.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|ONNXRUNTIME_NODE_INSTALL|INIT_CWD$)/i.test(k)) env[k] = v;
  return { ...env, GLOBAL_AGENT_HTTP_PROXY: 'http://127.0.0.1:9', ...extra };
}

/** A package's install script run as npm runs it: node on the file in its package's folder. */
export function installScript(file: string, cwd: string, extra: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const env = userEnv({ NODE_PATH: join(ROOT, 'node_modules'), ...extra });
  const r = spawnSync(process.execPath, [file], { cwd, env, encoding: 'utf8', timeout: HANG_MS });
  return { status: r.status, out: r.stdout + r.stderr };
}

export const INSTALL: Case[] = [
  {
    name: 'install-nuget-unreachable',
    what: 'npm install of the package with NuGet unreachable',
    async run(ctx) {
      if (!DOWNLOADS_CUDA) return 'onnxruntime-node downloads nothing on this platform';
      const p = installLayout(join(ctx.dir, 'scripts'));
      const pre = installScript(p.preinstall, dirname(dirname(p.preinstall)));
      assert.equal(pre.status, 0, pre.out);
      const post = installScript(join(p.ort, 'script', 'install.js'), p.ort);
      assert.equal(post.status, 0, `onnxruntime-node's install after the preinstall:\n${post.out}`);
      assert.equal(missingCudaLibraries(p.bin).length, 2, 'the placeholders count as missing');
      if (ctx.quick) return "onnxruntime-node's install exits 0 after the preinstall";

      // npm itself, on a tarball of this build, in a new project; then the installed command.
      const npm = (args: string[], cwd: string) =>
        spawnSync('npm', args, { cwd, env: userEnv(), encoding: 'utf8', timeout: 4 * HANG_MS, maxBuffer: 1 << 26 });
      const packed = npm(['pack', '--ignore-scripts', '--pack-destination', ctx.dir], ROOT);
      assert.equal(packed.status, 0, packed.stderr.slice(-800));
      const app = join(ctx.dir, 'app');
      mkdirSync(app);
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
      const tarball = join(
        ctx.dir,
        readdirSync(ctx.dir).find((f) => f.endsWith('.tgz'))!,
      );
      const t0 = Date.now();
      const installed = npm(['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], app);
      assert.equal(installed.status, 0, installed.stderr.slice(-1500));
      const bin = join(app, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
      assert.equal(statSync(join(bin, 'libonnxruntime_providers_cuda.so')).size, 0);
      const env = userEnv();
      const cuda = spawnSync(join(app, 'node_modules', '.bin', 'ilsvrc'), ['train', 'vgg-a', '--device', 'cuda', '--max-steps', '1'], {
        cwd: app,
        env,
        encoding: 'utf8',
        timeout: HANG_MS,
      });
      assert.equal(cuda.status, 2, cuda.stderr.slice(-800));
      assert.match(cuda.stderr, /ONNXRUNTIME_NODE_INSTALL=true npm rebuild onnxruntime-node/);
      return `npm install exit 0 in ${((Date.now() - t0) / 1000).toFixed(1)} s; --device cuda names the install step`;
    },
  },
];
