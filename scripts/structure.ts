/**
 * Measurable structure of src/, read with TypeScript's own parser: import cycles (between files,
 * within a folder or across folders), functions longer than a screen in the folders that must stay
 * readable, and exported symbols that nothing imports. `scripts/lint` prints them
 * and fails on any; `test/layout/structure.test.ts` holds the same line in the suite.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** The longest function, in lines, allowed in FUNCTION_FOLDERS. */
export const MAX_FUNCTION_LINES = 80;
/** Folders of src/ whose functions must fit on a screen. */
export const FUNCTION_FOLDERS = ['train', 'runtime'] as const;

export function tsFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
    })
    .sort();
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
}

/** Relative module specifiers of a file's static imports and re-exports (types included), resolved to .ts paths. */
function importsOf(sf: ts.SourceFile, typesToo: boolean): { target: string; names: string[] | '*' }[] {
  const out: { target: string; names: string[] | '*' }[] = [];
  const add = (spec: ts.Expression | undefined, names: string[] | '*'): void => {
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.') || !spec.text.endsWith('.js')) return;
    out.push({ target: resolve(dirname(sf.fileName), spec.text.replace(/\.js$/, '.ts')), names });
  };
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st)) {
      const c = st.importClause;
      if (!typesToo && c?.isTypeOnly) continue;
      const names: string[] = [];
      if (c?.name) names.push('default');
      const nb = c?.namedBindings;
      if (nb && ts.isNamespaceImport(nb)) {
        add(st.moduleSpecifier, '*');
        continue;
      }
      if (nb && ts.isNamedImports(nb))
        for (const e of nb.elements) if (typesToo || !e.isTypeOnly) names.push((e.propertyName ?? e.name).text);
      add(st.moduleSpecifier, names);
    } else if (ts.isExportDeclaration(st)) {
      if (!typesToo && st.isTypeOnly) continue;
      const ec = st.exportClause;
      add(st.moduleSpecifier, ec && ts.isNamedExports(ec) ? ec.elements.map((e) => (e.propertyName ?? e.name).text) : '*');
    }
  }
  // Dynamic imports (`await import('./x.js')`) count as edges too.
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) add(n.arguments[0], '*');
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** Strongly connected components of more than one file (or a file importing itself), by Tarjan's algorithm. */
export function importCycles(srcDir: string): string[][] {
  const files = tsFiles(srcDir);
  const edges = new Map(files.map((f) => [f, [...new Set(importsOf(parse(f), true).map((i) => i.target))]]));
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const cycles: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (edges.get(v) ?? []).includes(v)) cycles.push(comp.map((f) => relative(srcDir, f)).sort());
    }
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  return cycles;
}

export interface LongFunction {
  file: string;
  name: string;
  line: number;
  lines: number;
}

function functionName(n: ts.Node): string {
  if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && n.name) return n.name.getText();
  if (ts.isConstructorDeclaration(n)) return 'constructor';
  const p = n.parent;
  if (p && ts.isVariableDeclaration(p)) return p.name.getText();
  if (p && ts.isPropertyAssignment(p)) return p.name.getText();
  return '(anonymous)';
}

/** Functions, methods and arrow functions with bodies longer than `max` lines in the given folders of src/. */
export function longFunctions(srcDir: string, folders: readonly string[] = FUNCTION_FOLDERS, max = MAX_FUNCTION_LINES): LongFunction[] {
  const out: LongFunction[] = [];
  for (const folder of folders) {
    for (const file of tsFiles(join(srcDir, folder))) {
      const sf = parse(file);
      const visit = (n: ts.Node): void => {
        if ((ts.isFunctionLike(n) && 'body' in n && n.body) || ts.isClassStaticBlockDeclaration(n)) {
          const start = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
          const end = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
          if (end - start + 1 > max)
            out.push({ file: relative(srcDir, file), name: functionName(n), line: start + 1, lines: end - start + 1 });
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
  }
  return out;
}

/** Names a file exports (declarations and `export { … }` lists; `export *` is followed by the caller). */
function exportedNames(sf: ts.SourceFile): { name: string; line: number }[] {
  const out: { name: string; line: number }[] = [];
  const at = (n: ts.Node): number => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  for (const st of sf.statements) {
    const mods = ts.canHaveModifiers(st) ? ts.getModifiers(st) : undefined;
    const exported = mods?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) ?? false;
    if (exported) {
      if (mods?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword)) out.push({ name: 'default', line: at(st) });
      else if (ts.isVariableStatement(st)) {
        for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) out.push({ name: d.name.text, line: at(d) });
      } else if ('name' in st && st.name && ts.isIdentifier(st.name as ts.Node))
        out.push({ name: (st.name as ts.Identifier).text, line: at(st) });
    }
    if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const e of st.exportClause.elements) out.push({ name: e.name.text, line: at(e) });
    }
  }
  return out;
}

export interface UnusedExport {
  file: string;
  name: string;
  line: number;
}

/**
 * Symbols exported from a module of src/ that no other module imports — of src/, scripts/ or
 * test/ (pure functions are tested directly, so a test is a user) — and that the public entry point
 * (src/index.ts) does not re-export: exported for nothing. The entry point itself is not checked.
 */
export function unusedExports(root: string, entries: readonly string[] = ['src/index.ts']): UnusedExport[] {
  const srcDir = join(root, 'src');
  const users = [...tsFiles(srcDir), ...tsFiles(join(root, 'scripts')), ...tsFiles(join(root, 'test'))];
  const used = new Map<string, Set<string>>(); // file -> names imported from it by others
  const star = new Set<string>(); // files re-exported or imported whole
  for (const f of users) {
    for (const imp of importsOf(parse(f), true)) {
      if (imp.target === f) continue;
      if (imp.names === '*') star.add(imp.target);
      else {
        const s = used.get(imp.target) ?? new Set<string>();
        imp.names.forEach((n) => s.add(n));
        used.set(imp.target, s);
      }
    }
  }
  const entrySet = new Set(entries.map((e) => join(root, e)));
  const out: UnusedExport[] = [];
  for (const f of tsFiles(srcDir)) {
    if (entrySet.has(f) || star.has(f)) continue;
    const sf = parse(f);
    const names = used.get(f) ?? new Set<string>();
    for (const e of exportedNames(sf)) {
      if (names.has(e.name)) continue;
      out.push({ file: relative(root, f), name: e.name, line: e.line });
    }
  }
  return out;
}
