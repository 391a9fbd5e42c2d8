// Which code `trellis` runs: the JavaScript compiled into dist/ at install (scripts/build-dist.ts)
// when it was built from exactly the sources now in src/, else the TypeScript sources themselves
// (Node 24 strips their types on load: correct, but about 2x the CPU to start). Plain JavaScript,
// so that choosing costs no TypeScript loader. dist/.sources.json lists every file the build
// compiled or copied with its size and mtime; an edited, added or removed file makes dist stale.
// TRELLIS_FROM_SOURCE=1 forces the sources (the test suite runs them).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The stamp file inside dist/. */
export const STAMP = '.sources.json';

/**
 * Files under `srcDir` that the build turns into dist/: every file except tests (`*.test.ts`),
 * their helpers (`test-support.ts`) and `testdata/` folders, as [path relative to srcDir, size,
 * mtime ms], sorted by path.
 */
export function sourceFiles(srcDir) {
  const out = [];
  const walk = (dir, rel) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'testdata' && !e.name.startsWith('.')) walk(join(dir, e.name), r);
      } else if (!e.name.endsWith('.test.ts') && !e.name.endsWith('test-support.ts') && !e.name.startsWith('.')) {
        const st = statSync(join(dir, e.name));
        out.push([r, st.size, Math.round(st.mtimeMs)]);
      }
    }
  };
  walk(srcDir, '');
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** True when `root`/dist was built from the files now in `root`/src. */
export function distIsCurrent(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, 'dist', STAMP), 'utf8'));
  } catch {
    return false;
  }
  const now = sourceFiles(join(root, 'src'));
  const built = stamp.files;
  if (!Array.isArray(built) || built.length !== now.length) return false;
  for (let i = 0; i < now.length; i++) {
    const a = now[i];
    const b = built[i];
    if (a[0] !== b[0] || a[1] !== b[1] || a[2] !== b[2]) return false;
  }
  return true;
}

/** Absolute path of the CLI's main module to import: dist/cli/main.js or src/cli/main.ts. */
export function chooseEntry(root, env = process.env) {
  if (env.TRELLIS_FROM_SOURCE !== '1' && distIsCurrent(root)) return join(root, 'dist/cli/main.js');
  return join(root, 'src/cli/main.ts');
}
