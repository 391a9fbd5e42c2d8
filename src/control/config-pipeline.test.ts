import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileStore } from '../config/store/file.ts';
import { ConfigPipeline } from './config-pipeline.ts';
import type { MeshSnapshot } from './snapshot/index.ts';
import { SnapshotCache } from './xds/cache.ts';
import { translate, translationKey } from './translate/index.ts';

const service = 'apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\nspec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}\n';
const route = (host: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec: {hosts: [reviews], http: [{route: [{destination: {host: ${host}}}]}]}\n`;

test('the pipeline logs store problems when they appear (no polling), each once, and only what is worth a look', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-pipeline-'));
  const put = async (name: string, text: string) => {
    await writeFile(join(dir, `${name}.tmp`), text);
    await rename(join(dir, `${name}.tmp`), join(dir, name));
  };
  await put('a.yaml', service + '---\n' + route('reviews'));
  const store = await openFileStore(dir, { debounceMs: 10, maxDelayMs: 100, rescanIntervalMs: 0 });
  const warned: { code?: unknown; file?: unknown; msg: string }[] = [];
  const log = { warn: (o: Record<string, unknown>, msg: string) => void warned.push({ code: o.code, file: o.file, msg }), error: (_o: Record<string, unknown>, msg: string) => assert.fail(msg) };
  const cache = new SnapshotCache<MeshSnapshot>({ translate, key: translationKey });
  const writes: string[] = [];
  cache.watch((c) => writes.push(c.reason ?? ''));
  const pipeline = new ConfigPipeline({ store, cache, log });
  const until = async (what: string, cond: () => boolean) => {
    const end = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(warned)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  try {
    assert.equal(warned.length, 0, `a clean start logs nothing: ${JSON.stringify(warned)}`);
    writes.length = 0; // the initial snapshot
    // A second definition of the name in another file: a store warning, logged once, and the
    // first definition stays served (nothing new to serve, so no cache write).
    await put('b.yaml', route('ratings'));
    await until('DUPLICATE_RESOURCE', () => warned.some((w) => w.code === 'DUPLICATE_RESOURCE'));
    assert.match(String(warned.find((w) => w.code === 'DUPLICATE_RESOURCE')?.file), /b\.yaml$/);
    assert.equal(writes.length, 0, `no new snapshot: ${writes.join(', ')}`);
    // A file that stops parsing changes no resource; the store's diagnostics event brings it.
    await put('c.yaml', 'kind: [unclosed\n');
    await until('the parse error', () => warned.some((w) => typeof w.file === 'string' && w.file.endsWith('c.yaml')));
    const before = warned.length;
    // A fix of c.yaml withdraws its error; the duplicate is still not logged again.
    await put('c.yaml', service.replace('reviews', 'details').replace('reviews', 'details'));
    await until('a snapshot with the new Service', () => writes.length > 0);
    assert.equal(warned.length, before, `logged again: ${JSON.stringify(warned.slice(before))}`);
    assert.equal(warned.filter((w) => w.code === 'DUPLICATE_RESOURCE').length, 1);
  } finally {
    pipeline.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
