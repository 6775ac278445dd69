/**
 * The Dockerfile parses (hadolint when installed; always a structural parse) and has what the GPU
 * job needs: a CUDA + cuDNN base chosen by a build argument, Node 22, the CUDA provider install, the
 * ldd guard, a non-root user and `ilsvrc` as the entrypoint. No Docker engine is needed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

const KEYWORDS = new Set([
  'FROM',
  'ARG',
  'RUN',
  'COPY',
  'ADD',
  'WORKDIR',
  'ENV',
  'USER',
  'ENTRYPOINT',
  'CMD',
  'VOLUME',
  'EXPOSE',
  'LABEL',
  'HEALTHCHECK',
  'SHELL',
  'STOPSIGNAL',
  'ONBUILD',
]);

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comments dropped, as Docker reads them. */
function parse(src: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  src.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    if (!pending) start = i + 1;
    pending += (pending ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) return;
    const m = /^(\S+)\s+(.*)$/.exec(pending);
    assert.ok(m, `line ${start}: an instruction needs arguments: ${pending}`);
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: start });
    pending = '';
  });
  assert.equal(pending, '', 'the file ends inside a continued line');
  return out;
}

const ins = parse(text);
const all = (k: string) => ins.filter((i) => i.keyword === k);
const stages = (): Instruction[][] => {
  const s: Instruction[][] = [];
  for (const i of ins) {
    if (i.keyword === 'FROM') s.push([]);
    s[s.length - 1]?.push(i);
  }
  return s;
};

describe('Dockerfile', () => {
  it('parses: known instructions, ARGs before the first FROM, exec-form JSON where used', () => {
    for (const i of ins) assert.ok(KEYWORDS.has(i.keyword), `line ${i.line}: unknown instruction ${i.keyword}`);
    const firstFrom = ins.findIndex((i) => i.keyword === 'FROM');
    assert.ok(firstFrom >= 0);
    assert.ok(
      ins.slice(0, firstFrom).every((i) => i.keyword === 'ARG'),
      'only ARG before the first FROM',
    );
    for (const i of ins) if (i.args.startsWith('[')) assert.doesNotThrow(() => JSON.parse(i.args), `line ${i.line}: bad JSON ${i.args}`);
    // Every stage named in --from exists.
    const names = all('FROM')
      .map((f) => /\bAS\s+(\S+)/i.exec(f.args)?.[1])
      .filter(Boolean);
    for (const c of all('COPY')) {
      const from = /--from=(\S+)/.exec(c.args)?.[1];
      if (from) assert.ok(names.includes(from), `line ${c.line}: no stage ${from}`);
    }
  });

  it('hadolint accepts it (when installed)', (t) => {
    const r = spawnSync('hadolint', ['--failure-threshold', 'error', '-'], { input: text, encoding: 'utf8' });
    if (r.error) return t.skip('hadolint not installed');
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('builds on a CUDA 13 + cuDNN runtime base chosen by a build argument, with Node 22', () => {
    const arg = all('ARG').find((a) => a.args.startsWith('CUDA_IMAGE='));
    assert.ok(arg, 'ARG CUDA_IMAGE=…');
    assert.match(arg.args, /nvidia\/cuda:13\.[\d.]+-cudnn-runtime-/);
    assert.ok(all('FROM').filter((f) => f.args.startsWith('${CUDA_IMAGE}')).length >= 1);
    assert.match(text, /ARG NODE_IMAGE=node:22\b/);
  });

  it('installs the CUDA provider and runs the ldd guard on it in the final image', () => {
    assert.ok(all('RUN').some((r) => /\bONNXRUNTIME_NODE_INSTALL=cuda12 npm ci\b.*--ignore-scripts=false/.test(r.args)));
    const last = stages().at(-1)!;
    const guard = last.findIndex(
      (i) => i.keyword === 'RUN' && i.args.includes('ldd-guard.sh') && i.args.includes('onnxruntime-node/bin/napi-v6/linux/x64'),
    );
    assert.ok(guard >= 0, 'the final stage runs scripts/ldd-guard.sh on the binding folder');
    assert.ok(existsSync(join(ROOT, 'scripts', 'ldd-guard.sh')));
  });

  it('runs as a non-root user with ilsvrc as the entrypoint', () => {
    const last = stages().at(-1)!;
    const users = last.filter((i) => i.keyword === 'USER');
    assert.ok(users.length >= 1);
    assert.ok(!/^(root|0)(:|$)/.test(users.at(-1)!.args), 'not root');
    const entry = last.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
    assert.ok(entry);
    assert.deepEqual(JSON.parse(entry.args), ['ilsvrc']);
  });

  it('copies only paths that exist and that .dockerignore lets through', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'an allow-list');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const c of all('COPY')) {
      if (c.args.includes('--from=')) continue;
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(join(ROOT, src)), `line ${c.line}: ${src} does not exist`);
        assert.ok(
          allowed.some((a) => src === a || src.startsWith(`${a}/`)),
          `line ${c.line}: .dockerignore leaves out ${src}`,
        );
      }
    }
  });
});
