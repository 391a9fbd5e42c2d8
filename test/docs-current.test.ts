/**
 * The reference pages are generated from the CLI specs and the Workload schema
 * (src/cli/reference-docs.ts); a flag or field changed without `npm run docs` fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { referencePages } from '../src/cli/reference-docs.ts';
import { commands } from '../src/cli/commands.ts';
import { fieldDocs } from '../src/config/schema/explain.ts';
import { WORKLOAD_SPEC } from '../src/config/schema/local.ts';

const root = join(import.meta.dirname, '..');

test('docs/reference/*.md are what `npm run docs` generates', () => {
  for (const [path, text] of Object.entries(referencePages())) {
    assert.equal(readFileSync(join(root, path), 'utf8'), text, `${path} is stale: run npm run docs`);
  }
});

test('the references cover every verb, every option and every Workload field, each with a description', () => {
  const pages = referencePages();
  const cli = pages['docs/reference/cli.md'];
  for (const { spec } of commands) {
    assert.match(cli, new RegExp(`^## trellis ${spec.name}$`, 'm'));
    for (const [name, o] of Object.entries(spec.options)) {
      if (o.hidden === true) continue;
      assert.ok(o.help.length > 10, `${spec.name} --${name} has a description`);
      assert.ok(cli.includes(`--${name}`), `${spec.name} --${name} documented`);
    }
  }
  for (const f of fieldDocs(WORKLOAD_SPEC, true)) {
    assert.ok((f.description ?? '').length > 10, `spec.${f.path} has a description`);
    assert.ok(pages['docs/reference/workload.md'].includes(`\`spec.${f.path}\``), `spec.${f.path} documented`);
  }
});
