/**
 * `npm run docs`: writes the generated reference pages (docs/reference/cli.md, workload.md) from
 * the CLI specs and the Workload schema (src/cli/reference-docs.ts). test/docs-current.test.ts
 * checks they are current.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { referencePages } from '../src/cli/reference-docs.ts';

const root = join(import.meta.dirname, '..');
for (const [path, text] of Object.entries(referencePages())) {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), text);
  process.stdout.write(`wrote ${path}\n`);
}
