/**
 * Compiles src/ to JavaScript in dist/ (run by `npm ci` through the install script, or
 * `npm run build`); the sources stay TypeScript and tests run them. dist/ mirrors src/ file for
 * file at the same depth, so paths relative to a module (`../../examples`, `../../bin`,
 * `../../../native`) mean the same from both; files that are not TypeScript (a .proto) are copied,
 * and the xDS protos and the resource-kind catalog are stored ready to use
 * (dist/xds/proto-root.json, dist/config/schema/catalog.json; see their modules).
 * `tsc -p tsconfig.dist.json` only emits (noCheck: `npm test` type-checks). dist/.sources.json
 * records what it was built from, so bin/trellis.js runs dist/ only while it is current
 * (bin/entry.js). The new tree is built beside dist/ and swapped in, so a CLI starting meanwhile
 * sees either the old tree or the new one. Without the compiler (`npm ci --omit=dev`) it warns
 * and exits 0: the CLI then runs the sources.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sourceFiles, STAMP } from '../bin/entry.js';
import { prebuiltRootJson } from '../src/xds/proto-root.ts';
import { prebuiltCatalogJson } from '../src/config/schema/catalog.ts';

const root = join(import.meta.dirname, '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const next = join(root, `.dist-${process.pid}`);
const tsc = join(root, 'node_modules/.bin/tsc');

if (!existsSync(tsc)) {
  process.stderr.write('trellis: warning: no TypeScript compiler (node_modules/.bin/tsc); not building dist/, the CLI runs the TypeScript sources (slower to start)\n');
  process.exit(0);
}
const t0 = performance.now();
// Listed before compiling: a source edited during the build then makes dist/ stale, never wrongly current.
const files = sourceFiles(src);
rmSync(next, { recursive: true, force: true });
const result = spawnSync(tsc, ['-p', join(root, 'tsconfig.dist.json'), '--outDir', next], { cwd: root, encoding: 'utf8' });
if (result.status !== 0 || !existsSync(join(next, 'cli/main.js'))) {
  rmSync(next, { recursive: true, force: true });
  process.stderr.write(`trellis: warning: compiling src/ to dist/ failed; the CLI runs the TypeScript sources\n${result.stdout}${result.stderr}\n`);
  process.exit(0);
}
for (const [rel] of files) {
  if (rel.endsWith('.ts')) continue;
  mkdirSync(dirname(join(next, rel)), { recursive: true });
  copyFileSync(join(src, rel), join(next, rel));
}
// The parsed xDS protos, so no process parses .proto text at startup (src/xds/proto-root.ts).
writeFileSync(join(next, 'xds/proto-root.json'), prebuiltRootJson());
// The resource-kind catalog (schemas from the model packages, patched), likewise.
writeFileSync(join(next, 'config/schema/catalog.json'), prebuiltCatalogJson());
writeFileSync(join(next, STAMP), JSON.stringify({ builtAt: new Date().toISOString(), files }) + '\n');
rmSync(dist, { recursive: true, force: true });
renameSync(next, dist);
process.stdout.write(`trellis: compiled src/ to dist/ (${files.length} files, ${Math.round(performance.now() - t0)} ms); bin/trellis.js runs it while it matches src/\n`);
