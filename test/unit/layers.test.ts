/**
 * The layers of README.md (Development, Layout), as a test: dependencies point inward, `engine/`
 * knows nothing of Velero or Kubernetes, `velero/` nothing of Victoria. A new import across a
 * boundary fails here with the file and the import, instead of growing unnoticed.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const SRC = resolve(import.meta.dirname, '../../src');

/** Which layers each layer may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  common: [],
  store: ['common'],
  engine: ['store', 'common'],
  victoria: ['common'],
  kube: ['common'],
  companion: ['engine', 'victoria', 'common'],
  velero: ['common'],
  actions: ['velero', 'kube', 'companion', 'victoria', 'engine', 'store', 'common'],
  cli: ['velero', 'actions', 'kube', 'companion', 'victoria', 'engine', 'store', 'common'],
};

/** Every .ts file under src/ (absolute paths). */
const sources = (): string[] => readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(SRC, f));

/** The layer (top directory under src/) of a path, or '' for src/main.ts. */
const layerOf = (path: string): string => {
  const rel = relative(SRC, path).split('/');
  return rel.length > 1 ? rel[0]! : '';
};

describe('layers (README.md Layout: dependencies point inward)', () => {
  it('has a rule for every directory under src/', () => {
    const dirs = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(dirs.sort()).to.deep.equal(Object.keys(ALLOWED).sort());
  });

  it('no module imports from a layer outside its own', () => {
    const crossings: string[] = [];
    for (const file of sources()) {
      const from = layerOf(file);
      if (from === '') continue; // src/main.ts is the entry point: it may start any layer
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
        const target = resolve(dirname(file), m[1]!);
        if (relative(SRC, target).startsWith('..')) continue; // package.json and the like
        const to = layerOf(target);
        if (to !== from && !ALLOWED[from]!.includes(to)) crossings.push(`${relative(SRC, file)} imports ${m[1]} (${from} → ${to || 'src/'})`);
      }
    }
    expect(crossings).to.deep.equal([]);
  });
});

describe('what a plugin process loads to start', () => {
  it('not the S3 SDK nor the Kubernetes client: Velero starts a process per backup, restore, deletion and operation poll, and an action loads them when it runs', () => {
    // Records every package specifier resolved while the executable's entry module is imported.
    const script = `
      import { registerHooks } from 'node:module';
      const loaded = new Set();
      registerHooks({ resolve(specifier, context, next) { if (/^@(aws-sdk|smithy|kubernetes)\\//.test(specifier)) loaded.add(specifier); return next(specifier, context); } });
      await import(${JSON.stringify(pathToFileURL(join(SRC, 'cli', 'main.ts')).href)});
      process.stdout.write(JSON.stringify([...loaded]));
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.equal([]);
  });
});
