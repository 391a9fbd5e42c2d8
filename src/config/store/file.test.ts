import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { hasCode } from '../../errors.ts';
import { ResourceTypes, resourceKey } from '../resource.ts';
import type { Resource, ResourceType } from '../resource.ts';
import { runStoreSuite } from './common.case.ts';
import { FileStore, openFileStore } from './file.ts';
import type { FileStoreOptions } from './file.ts';
import type { ConfigStore, StoreEvent } from './types.ts';

const VS = ResourceTypes.VirtualService;
const DR = ResourceTypes.DestinationRule;
const FAST: FileStoreOptions = { debounceMs: 30, maxDelayMs: 300, rescanIntervalMs: 0 };

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'trellis-filestore-'));
}

/** YAML text of resources, one document each. */
function toYaml(resources: readonly Resource[]): string {
  return resources
    .map((r) => stringify({ apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.metadata.name, namespace: r.metadata.namespace, ...(Object.keys(r.metadata.labels).length > 0 ? { labels: r.metadata.labels } : {}) }, spec: r.spec }))
    .join('---\n');
}

/** Writes via a temp file + rename, the way careful editors and `kubectl`-style tools do. */
async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = join(path, '..', `.${Date.now()}-${Math.random().toString(36).slice(2)}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** Polls `cond` every 10 ms for up to `ms`; fails with `what` on timeout. */
async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function vs(name: string, host: string, namespace = 'default'): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n  hosts: [${host}]\n`;
}

function dr(name: string, host: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: ${name}\nspec:\n  host: ${host}\n`;
}

function hostOf(store: ConfigStore, type: ResourceType, name: string): string | undefined {
  const spec = store.get(type, 'default', name)?.spec as { hosts?: string[]; host?: string } | undefined;
  return spec?.hosts?.[0] ?? spec?.host;
}

function codes(store: ConfigStore): string[] {
  return store.diagnostics().map((d) => d.code);
}

/** Records every batch and the size of the store's view right after it. */
function recordViews(store: FileStore): { views: number[]; batches: (readonly StoreEvent[])[] } {
  const views: number[] = [];
  const batches: (readonly StoreEvent[])[] = [];
  store.watch((events) => {
    batches.push(events);
    views.push(store.all().length);
  });
  return { views, batches };
}

runStoreSuite('FileStore', async () => {
  const dir = await tempDir();
  const file = join(dir, 'all.yaml');
  const store = new FileStore(dir, FAST);
  const model = new Map<string, Resource>();
  const flushAll = async (): Promise<void> => {
    // (a comment keeps an emptied file from looking like a truncated mid-write)
    await atomicWrite(file, `# suite\n${toYaml([...model.values()])}`);
    await store.flush();
  };
  return {
    store,
    write: async (rs) => {
      for (const r of rs) model.set(resourceKey(r), r);
      await flushAll();
    },
    remove: async (type, ns, name) => {
      model.delete(`${type}:${ns}/${name}`);
      await flushAll();
    },
    settle: () => new Promise((r) => setTimeout(r, 150)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

test('FileStore: valid -> invalid YAML -> schema-invalid -> fixed -> deleted: a broken definition leaves the store, named in rejected(), announced before its batch', async () => {
  const dir = await tempDir();
  const file = join(dir, 'mesh.yaml');
  const store = await openFileStore(dir, FAST);
  try {
    const order: string[] = [];
    store.watch((events) => order.push(`batch ${events.map((e) => `${e.kind} ${e.resource.kind}`).join(',')}`));
    store.watchDiagnostics(() => order.push(`diagnostics ${[...store.rejected().values()].map((r) => r.kind).join(',')}`));
    assert.equal(store.all().length, 0);

    await writeFile(file, `${vs('reviews', 'v1')}---\n${dr('reviews', 'reviews')}`);
    await waitFor('both resources loaded', () => store.all().length === 2);
    assert.equal(hostOf(store, VS, 'reviews'), 'v1');
    assert.deepEqual(store.diagnostics(), []);

    order.length = 0;
    await writeFile(file, `${vs('reviews', 'v2')}  bad: [unclosed\n---\n${dr('reviews', 'reviews')}`);
    await waitFor('a syntax diagnostic', () => store.diagnostics().some((d) => d.severity === 'error'));
    await waitFor('the batch', () => order.length >= 2);
    const rejected = [...store.rejected().values()];
    assert.deepEqual(rejected.map((r) => [r.kind, r.name]), [['VirtualService', 'reviews']]);
    assert.match(rejected[0].reason, /mesh\.yaml:\d+ (cannot be parsed|is invalid)/);
    assert.equal(store.get(VS, 'default', 'reviews'), undefined, 'the store keeps no old version (the config gate does)');
    assert.ok(store.get(DR, 'default', 'reviews'));
    assert.deepEqual(order, ['diagnostics VirtualService', 'batch deleted VirtualService'], 'the rejection is known before the resource leaves');

    await writeFile(file, `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: 42\n---\n${dr('reviews', 'reviews-v3')}`);
    await waitFor('the valid sibling document is applied', () => hostOf(store, DR, 'reviews') === 'reviews-v3');
    assert.match(store.rejected().get(`${VS}:default/reviews`)?.reason ?? '', /the definition at .*mesh\.yaml:1 is invalid/);
    assert.ok(store.diagnostics().some((d) => d.severity === 'error'), 'the reason is reported');

    await writeFile(file, `${vs('reviews', 'v4')}---\n${dr('reviews', 'reviews-v3')}`);
    await waitFor('the fix is applied', () => hostOf(store, VS, 'reviews') === 'v4');
    assert.deepEqual(store.diagnostics(), [], 'diagnostics gone when fixed');
    assert.equal(store.rejected().size, 0);

    await rm(file);
    await waitFor('resources removed with their file', () => store.all().length === 0);
    assert.deepEqual(store.diagnostics(), []);
    assert.equal(store.rejected().size, 0);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: a file that fails to parse and changes no resource is a diagnostics event, not a batch', async () => {
  const dir = await tempDir();
  const store = await openFileStore(dir, FAST);
  try {
    let batches = 0;
    let events = 0;
    store.watch(() => batches++);
    store.watchDiagnostics(() => events++);
    await writeFile(join(dir, 'new.yaml'), 'kind: [unclosed\n');
    await waitFor('the diagnostics event', () => events === 1);
    assert.ok(store.diagnostics().some((d) => d.severity === 'error' && d.file?.endsWith('new.yaml')));
    await store.flush();
    assert.equal(events, 1, 'the same diagnostics again are no event');
    assert.equal(batches, 0);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: rename-based atomic writes are picked up; dot-files and other extensions are ignored', async () => {
  const dir = await tempDir();
  const file = join(dir, 'vs.yaml');
  await writeFile(file, vs('r', 'one'));
  await writeFile(join(dir, 'README.md'), 'not config');
  await writeFile(join(dir, '.vs.yaml.swp'), 'garbage: [');
  const store = await openFileStore(dir, FAST);
  try {
    assert.equal(hostOf(store, VS, 'r'), 'one');
    for (const host of ['two', 'three', 'four']) {
      await atomicWrite(file, vs('r', host));
      await waitFor(`host ${host} after atomic rename`, () => hostOf(store, VS, 'r') === host);
    }
    assert.deepEqual(store.diagnostics(), []);
    assert.deepEqual(store.files(), [join(dir, 'vs.yaml')]);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: a file replaced by rename through the same temp name, many times, in the root and a subdirectory, is seen by the watcher alone', async () => {
  // Node's recursive fs.watch on Linux stops reporting such a file after two replacements; the
  // store watches each directory itself (FAST has no safety rescan, so only the watcher can see it).
  const dir = await tempDir();
  await mkdir(join(dir, 'team'));
  const files = [join(dir, 'vs.yaml'), join(dir, 'team', 'dr.yaml')];
  await writeFile(files[0], vs('r', 'h0'));
  await writeFile(files[1], dr('d', 'h0'));
  const store = await openFileStore(dir, FAST);
  try {
    for (let i = 1; i <= 8; i++) {
      await new Promise((r) => setTimeout(r, 200)); // let the watcher settle, as between edits
      for (const file of files) {
        const tmp = join(file, '..', `.${basename(file)}.tmp`);
        await writeFile(tmp, file.endsWith('vs.yaml') ? vs('r', `h${i}`) : dr('d', `h${i}`));
        await rename(tmp, file);
      }
      await waitFor(`replacement ${i} seen`, () => hostOf(store, VS, 'r') === `h${i}` && hostOf(store, DR, 'd') === `h${i}`, 3000);
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: a burst of rapid writes coalesces into few batches and ends in the final state', async () => {
  const dir = await tempDir();
  const store = await openFileStore(dir, { ...FAST, debounceMs: 150, maxDelayMs: 3000 });
  try {
    const { batches } = recordViews(store);
    for (let i = 0; i < 40; i++) {
      await writeFile(join(dir, `f${i % 5}.yaml`), vs(`r${i % 5}`, `h${i}`));
    }
    await waitFor('final state', () => hostOf(store, VS, 'r4') === 'h39' && hostOf(store, VS, 'r0') === 'h35');
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(batches.length <= 3, `40 writes gave ${batches.length} batches`);
    assert.equal(store.all().length, 5);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: files in new subdirectories are found by the watcher; removing the directory removes them', async () => {
  const dir = await tempDir();
  const store = await openFileStore(dir, FAST); // no safety rescan: the watcher alone
  try {
    await mkdir(join(dir, 'team-a', 'nested'), { recursive: true });
    await writeFile(join(dir, 'team-a', 'nested', 'vs.yml'), vs('deep', 'deep-host'));
    await writeFile(join(dir, 'team-a', 'dr.json'), JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'json' }, spec: { host: 'j' } }));
    await waitFor('nested files loaded', () => hostOf(store, VS, 'deep') === 'deep-host' && hostOf(store, DR, 'json') === 'j');
    assert.deepEqual(store.files(), [join(dir, 'team-a', 'dr.json'), join(dir, 'team-a', 'nested', 'vs.yml')]);
    await rm(join(dir, 'team-a'), { recursive: true });
    await waitFor('directory removal removes its resources', () => store.all().length === 0);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: a directory moved in from elsewhere is picked up', async () => {
  const dir = await tempDir();
  const outside = await tempDir();
  const store = await openFileStore(dir, FAST);
  try {
    await writeFile(join(outside, 'vs.yaml'), vs('moved', 'm'));
    await rename(outside, join(dir, 'moved-in'));
    await waitFor('moved-in directory loaded', () => hostOf(store, VS, 'moved') === 'm');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  }
});

test('FileStore: the same resource in two files: first by path wins, diagnostic names both; a move between files is not a delete', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'a.yaml'), vs('r', 'from-a'));
  await writeFile(join(dir, 'b.yaml'), vs('r', 'from-b'));
  const store = await openFileStore(dir, FAST);
  try {
    assert.equal(hostOf(store, VS, 'r'), 'from-a');
    const dup = store.diagnostics().find((d) => d.code === 'DUPLICATE_RESOURCE');
    assert.ok(dup);
    assert.match(dup.message, /a\.yaml:1 and .*b\.yaml:1/);
    const { batches } = recordViews(store);
    await rm(join(dir, 'a.yaml'));
    await waitFor('b takes over', () => hostOf(store, VS, 'r') === 'from-b');
    assert.deepEqual(codes(store), []);
    // move b.yaml -> c.yaml (same content): nothing changes for consumers
    const before = batches.length;
    await rename(join(dir, 'b.yaml'), join(dir, 'c.yaml'));
    await waitFor('c.yaml tracked', () => store.files().some((f) => f.endsWith('c.yaml')) && !store.files().some((f) => f.endsWith('b.yaml')));
    assert.equal(hostOf(store, VS, 'r'), 'from-b');
    assert.ok(batches.slice(before).every((b) => b.every((e) => e.kind !== 'deleted')), 'never deleted during the move');
    assert.equal(store.get(VS, 'default', 'r')?.source?.file, join(dir, 'c.yaml'), 'source follows the move');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: a missing path is CONFIG_DIR_NOT_FOUND from openFileStore and ready()', async () => {
  const dir = await tempDir();
  const missing = join(dir, 'does-not-exist');
  await assert.rejects(openFileStore(missing, FAST), (e) => hasCode(e, 'CONFIG_DIR_NOT_FOUND') && e.message.includes('does-not-exist'));
  const store = new FileStore(missing, FAST);
  await assert.rejects(store.ready(), (e) => hasCode(e, 'CONFIG_DIR_NOT_FOUND'));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('FileStore: a single file is watched through its directory (survives rename-replace)', async () => {
  const dir = await tempDir();
  const file = join(dir, 'only.yaml');
  await writeFile(file, vs('r', 'one'));
  await writeFile(join(dir, 'other.yaml'), vs('ignored', 'x'));
  const store = await openFileStore(file, FAST);
  try {
    assert.deepEqual(store.all().map((r) => r.metadata.name), ['r']);
    await atomicWrite(file, vs('r', 'two'));
    await waitFor('replaced file reloaded', () => hostOf(store, VS, 'r') === 'two');
    await writeFile(file, vs('r', 'three'));
    await waitFor('in-place write reloaded', () => hostOf(store, VS, 'r') === 'three');
    assert.equal(store.get(VS, 'default', 'ignored'), undefined);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: when the directory itself disappears the last config stays, with a diagnostic; it recovers', async () => {
  const dir = await tempDir();
  const root = join(dir, 'conf');
  await mkdir(root);
  await writeFile(join(root, 'vs.yaml'), vs('r', 'one'));
  const store = await openFileStore(root, { ...FAST, rescanIntervalMs: 50 });
  try {
    await rm(root, { recursive: true });
    await waitFor('a CONFIG_DIR_NOT_FOUND diagnostic', () => codes(store).includes('CONFIG_DIR_NOT_FOUND'));
    assert.equal(hostOf(store, VS, 'r'), 'one');
    await mkdir(root);
    await writeFile(join(root, 'vs.yaml'), vs('r', 'two'));
    await waitFor('recovered', () => hostOf(store, VS, 'r') === 'two' && !codes(store).includes('CONFIG_DIR_NOT_FOUND'));
    await writeFile(join(root, 'vs.yaml'), vs('r', 'three'));
    await waitFor('watching the new directory', () => hostOf(store, VS, 'r') === 'three');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: the initial load is one batch; watch: false loads once; close is idempotent', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'a.yaml'), `${vs('a', 'a')}---\n${vs('b', 'b')}`);
  const store = new FileStore(dir, { watch: false });
  const seen: number[] = [];
  store.watch((events, revision) => seen.push(events.length, revision));
  await store.ready();
  assert.deepEqual(seen, [2, 1]);
  assert.equal(store.revision, 1);
  await writeFile(join(dir, 'a.yaml'), vs('a', 'changed'));
  await store.flush();
  assert.equal(hostOf(store, VS, 'a'), 'changed', 'flush reloads even without a watcher');
  await store.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('FileStore: a file caught truncated mid-write keeps its resources; a file left empty loses them', async () => {
  const dir = await tempDir();
  const file = join(dir, 'vs.yaml');
  await writeFile(file, vs('r', 'one'));
  const store = await openFileStore(dir, { ...FAST, watch: false });
  try {
    const { views } = recordViews(store);
    await writeFile(file, '');
    await store.flush();
    assert.equal(hostOf(store, VS, 'r'), 'one', 'first look at an empty file: treated as mid-write');
    await writeFile(file, vs('r', 'two'));
    await store.flush();
    assert.equal(hostOf(store, VS, 'r'), 'two');
    assert.ok(views.every((n) => n > 0), `views: ${views}`);
    await writeFile(file, '');
    await store.flush();
    assert.equal(hostOf(store, VS, 'r'), 'two');
    await waitFor('an emptied file takes effect on the second look', () => store.all().length === 0);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileStore: a ConfigMap-style volume (..data symlinks) is read once per file and follows the swap', async () => {
  const dir = await tempDir();
  await mkdir(join(dir, '..v1'));
  await writeFile(join(dir, '..v1', 'vs.yaml'), vs('r', 'one'));
  await symlink('..v1', join(dir, '..data'));
  await symlink(join('..data', 'vs.yaml'), join(dir, 'vs.yaml'));
  const store = await openFileStore(dir, FAST);
  try {
    assert.equal(hostOf(store, VS, 'r'), 'one');
    assert.deepEqual(codes(store), [], 'no duplicate: the ..data copy is not read');
    // kubelet's atomic update: new timestamped dir, then swap the ..data link by rename
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'vs.yaml'), vs('r', 'two'));
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await waitFor('swapped content', () => hostOf(store, VS, 'r') === 'two');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
