import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCatalog, loadPrebuiltCatalog, prebuiltCatalogJson } from './catalog.ts';

test('the stored catalog (what the build writes to dist/) equals the built one, and is ignored when built from other packages', () => {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-'));
  try {
    const file = join(dir, 'catalog.json');
    writeFileSync(file, prebuiltCatalogJson());
    const loaded = loadPrebuiltCatalog(file);
    assert.ok(loaded !== undefined);
    // Equal as data (a build leaves absent fields as undefined, JSON drops them).
    assert.equal(JSON.stringify([...loaded.entries()]), JSON.stringify([...buildCatalog().entries()]));
    writeFileSync(file, JSON.stringify({ key: 'other versions', kinds: [] }));
    assert.equal(loadPrebuiltCatalog(file), undefined);
    assert.equal(loadPrebuiltCatalog(join(dir, 'absent.json')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
