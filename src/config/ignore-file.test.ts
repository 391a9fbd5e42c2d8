import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ignoreMatcher } from './ignore-file.ts';
import { loadConfigPaths } from './load.ts';

test('.trellisignore patterns: names, wildcards, directories only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-ignore-'));
  try {
    assert.equal(ignoreMatcher(dir)('x.yaml', false), false);
    writeFileSync(join(dir, '.trellisignore'), '# alternatives\nsteps/\n*.draft.yaml\n\n');
    const ignored = ignoreMatcher(dir);
    assert.equal(ignored('steps', true), true);
    assert.equal(ignored('steps', false), false);
    assert.equal(ignored('a.draft.yaml', false), true);
    assert.equal(ignored('a.yaml', false), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadConfigPaths skips what .trellisignore names', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-ignore-'));
  try {
    const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}}\n`;
    writeFileSync(join(dir, 'a.yaml'), ns('a'));
    mkdirSync(join(dir, 'alts'));
    writeFileSync(join(dir, 'alts', 'b.yaml'), ns('a'));
    writeFileSync(join(dir, '.trellisignore'), 'alts/\n');
    const r = await loadConfigPaths([dir]);
    assert.deepEqual(r.resources.map((x) => x.metadata.name), ['a']);
    assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
