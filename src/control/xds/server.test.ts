import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fromAny } from '../../xds/codec.ts';
import { TypeUrl, type XdsResourceSet } from '../../xds/types.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { createXdsServer, type XdsServer } from './server.ts';
import { deltaStream, sotwStream } from './testdata/ads-test-client.ts';
import { edsCluster, endpoints, envoyListener, generatorCache, resourceSet, routeConfig } from './testdata/resource-sets.ts';

function world(backendPort: number, extraCluster = false): XdsResourceSet {
  return resourceSet({
    [TypeUrl.Listener]: [envoyListener('http', 18080, 'r1'), { name: 'grpc-target', api_listener: { api_listener: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', rds: { route_config_name: 'r1', config_source: { ads: {} } } } } }],
    [TypeUrl.RouteConfiguration]: [routeConfig('r1', 'c1'), routeConfig('r2', 'c1')],
    [TypeUrl.Cluster]: [...edsCluster('c1', backendPort), ...(extraCluster ? edsCluster('c2', backendPort) : [])],
    [TypeUrl.ClusterLoadAssignment]: [endpoints('c1', backendPort), ...(extraCluster ? [endpoints('c2', backendPort)] : [])],
  });
}

let server: XdsServer;
let push: ReturnType<typeof generatorCache>['push'];
let port: number;
let current = world(9000);
const generated: string[] = [];

before(async () => {
  const gen = generatorCache((proxy: ProxyNode) => {
    generated.push(proxy.id);
    if (proxy.id === 'broken') throw new Error('boom');
    return current;
  });
  push = gen.push;
  server = createXdsServer({ debounceMs: 20, maxDelayMs: 200, cache: gen.cache });
  port = await server.listen();
});
after(() => server.close(500));

const node = (id: string) => ({ id, metadata: { NAMESPACE: 'ns1', LABELS: { app: id } } });
const rowOf = (id: string) => server.status().find((p) => p.id === id);

test('SotW: wildcard CDS/LDS, named EDS/RDS, ACK -> SYNCED, NACK -> NACKED with message, stale nonce ignored', async () => {
  const s = sotwStream(port);
  try {
    s.send({ node: node('p1'), type_url: TypeUrl.Cluster });
    const cds = await s.next();
    assert.equal(cds.type_url, TypeUrl.Cluster);
    assert.equal(cds.resources?.length, 1);
    assert.equal(fromAny(cds.resources![0]).name, 'c1');
    assert.equal(rowOf('p1')?.types.CDS.state, 'STALE');
    assert.equal(rowOf('p1')?.proxy?.namespace, 'ns1');
    s.send({ type_url: TypeUrl.Cluster, version_info: cds.version_info, response_nonce: cds.nonce });
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['c1'] });
    const eds = await s.next();
    assert.equal(eds.type_url, TypeUrl.ClusterLoadAssignment);
    assert.deepEqual(eds.resources?.map((r) => fromAny(r).cluster_name), ['c1']);
    assert.equal(rowOf('p1')?.types.CDS.state, 'SYNCED');
    assert.equal(rowOf('p1')?.types.CDS.ackedVersion, cds.version_info);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: eds.version_info, response_nonce: eds.nonce, resource_names: ['c1'] });

    s.send({ type_url: TypeUrl.Listener });
    const lds = await s.next();
    assert.equal(lds.resources?.length, 2, 'wildcard LDS gets every listener');
    s.send({ type_url: TypeUrl.Listener, version_info: lds.version_info, response_nonce: lds.nonce });

    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['r1'] });
    const rds = await s.next();
    assert.deepEqual(rds.resources?.map((r) => fromAny(r).name), ['r1'], 'only the subscribed route');
    // NACK it.
    s.send({ type_url: TypeUrl.RouteConfiguration, version_info: '', response_nonce: rds.nonce, resource_names: ['r1'], error_detail: { code: 3, message: 'route r1: bad regex' } });
    assert.ok(await s.quiet(200), 'a NACK is not answered with the same version');
    const row = rowOf('p1')!;
    assert.equal(row.types.RDS.state, 'NACKED');
    assert.equal(row.types.RDS.nackError, 'route r1: bad regex');
    assert.equal(row.types.RDS.nackVersion, rds.version_info);
    assert.equal(server.counters.nacks.RDS, 1);

    // Changing the subscription (with the latest nonce) sends the new subset.
    s.send({ type_url: TypeUrl.RouteConfiguration, version_info: '', response_nonce: rds.nonce, resource_names: ['r1', 'r2'] });
    const rds2 = await s.next();
    assert.deepEqual(rds2.resources?.map((r) => fromAny(r).name).sort(), ['r1', 'r2']);
    // A request carrying an old nonce is stale: ignored, even with different names.
    s.send({ type_url: TypeUrl.RouteConfiguration, version_info: '', response_nonce: rds.nonce, resource_names: ['r2'] });
    assert.ok(await s.quiet(200));
    assert.equal(rowOf('p1')?.types.RDS.state, 'STALE');
    s.send({ type_url: TypeUrl.RouteConfiguration, version_info: rds2.version_info, response_nonce: rds2.nonce, resource_names: ['r1', 'r2'] });
    await waitFor(() => rowOf('p1')?.types.RDS.state === 'SYNCED');
    assert.deepEqual(rowOf('p1')?.types.RDS.resourceNames, ['r1', 'r2']);

    // Config dump shows what was sent.
    const dump = server.configDump('p1')!;
    assert.deepEqual(Object.keys(dump.types), ['CDS', 'EDS', 'LDS', 'RDS']);
    assert.equal(dump.types.RDS.resources.length, 2);
    assert.equal(dump.types.CDS.resources[0]['@type'], TypeUrl.Cluster);

    // Push after an endpoint change: only EDS is sent.
    current = world(9001);
    push({ reason: 'endpoints changed' });
    const eds2 = await s.next();
    assert.equal(eds2.type_url, TypeUrl.ClusterLoadAssignment);
    assert.notEqual(eds2.version_info, eds.version_info);
    assert.ok(await s.quiet(200), 'nothing but EDS changed');

    // A new cluster: CDS then EDS (c2 not subscribed: the EDS content for c1 is unchanged -> not sent).
    current = world(9001, true);
    push();
    const cds2 = await s.next();
    assert.equal(cds2.type_url, TypeUrl.Cluster);
    assert.equal(cds2.resources?.length, 2);
    assert.ok(await s.quiet(200));
  } finally {
    s.close();
  }
  await waitFor(() => rowOf('p1') === undefined);
});

test('pushes go only to the proxies a change affects, debounced into one generation', async () => {
  current = world(9100);
  const a = sotwStream(port);
  const b = sotwStream(port);
  try {
    a.send({ node: node('pa'), type_url: TypeUrl.Cluster });
    b.send({ node: node('pb'), type_url: TypeUrl.Cluster });
    const ra = await a.next();
    const rb = await b.next();
    a.send({ type_url: TypeUrl.Cluster, version_info: ra.version_info, response_nonce: ra.nonce });
    b.send({ type_url: TypeUrl.Cluster, version_info: rb.version_info, response_nonce: rb.nonce });
    await waitFor(() => rowOf('pa')?.types.CDS.state === 'SYNCED' && rowOf('pb')?.types.CDS.state === 'SYNCED');
    generated.length = 0;
    current = world(9100, true);
    for (let i = 0; i < 5; i++) push({ affects: (p) => p.labels.app === 'pa', reason: `change ${i}` });
    const pushed = await a.next();
    assert.equal(pushed.resources?.length, 2);
    assert.ok(await b.quiet(200), 'pb is not affected');
    assert.deepEqual(generated, ['pa'], 'five triggers, one generation, one proxy');
  } finally {
    a.close();
    b.close();
  }
});

test('named LDS subscription (proxyless gRPC asks for its target listener by name)', async () => {
  current = world(9200);
  const s = sotwStream(port);
  try {
    s.send({ node: node('grpc-client'), type_url: TypeUrl.Listener, resource_names: ['grpc-target'] });
    const lds = await s.next();
    assert.deepEqual(lds.resources?.map((r) => fromAny(r).name), ['grpc-target']);
    s.send({ node: node('grpc-client'), type_url: TypeUrl.Listener, resource_names: ['nope'], version_info: lds.version_info, response_nonce: lds.nonce });
    const none = await s.next();
    assert.equal(none.resources?.length ?? 0, 0, 'subscription moved to a name that does not exist');
  } finally {
    s.close();
  }
});

test('a first request of a type carrying a nonce from an earlier stream is answered, not ignored as stale', async () => {
  current = world(9250);
  const s = sotwStream(port);
  try {
    s.send({ node: node('reconnecting'), type_url: TypeUrl.Cluster, version_info: 'old', response_nonce: '42' });
    const r = await s.next();
    assert.equal(r.resources?.length, 1);
  } finally {
    s.close();
  }
});

test('a stream whose first request has no node is rejected; a failing generator is reported, not fatal, and nothing is served without a set', async () => {
  const s = sotwStream(port);
  s.send({ type_url: TypeUrl.Cluster });
  await waitFor(() => s.error !== undefined);
  assert.equal((s.error as Error & { code?: number }).code, 3, 'INVALID_ARGUMENT');
  assert.match(s.error!.message, /must carry node.id/);
  s.close();
  const broken = sotwStream(port);
  try {
    broken.send({ node: node('broken'), type_url: TypeUrl.Cluster });
    assert.ok(await broken.quiet(200), 'no (empty) response: the proxy keeps what it has');
    assert.match(rowOf('broken')?.problems[0] ?? '', /generate failed: boom/);
  } finally {
    broken.close();
  }
});

test('delta: wildcard, per-resource versions, ACK, only changes sent, removals, NACK, initial versions', async () => {
  current = world(9300, true);
  const s = deltaStream(port);
  let c1Version = '';
  try {
    s.send({ node: node('d1'), type_url: TypeUrl.Cluster });
    const r1 = await s.next();
    assert.deepEqual(r1.resources?.map((r) => r.name).sort(), ['c1', 'c2']);
    assert.ok(r1.resources?.every((r) => r.version !== undefined && r.version !== ''));
    c1Version = r1.resources!.find((r) => r.name === 'c1')!.version!;
    s.send({ type_url: TypeUrl.Cluster, response_nonce: r1.nonce });
    await waitFor(() => rowOf('d1')?.types.CDS.state === 'SYNCED');
    assert.equal(rowOf('d1')?.mode, 'delta');

    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['c1'] });
    const e1 = await s.next();
    assert.deepEqual(e1.resources?.map((r) => r.name), ['c1']);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: e1.nonce, error_detail: { message: 'endpoint bad' } });
    await waitFor(() => rowOf('d1')?.types.EDS.state === 'NACKED');
    assert.equal(rowOf('d1')?.types.EDS.nackError, 'endpoint bad');

    // c2 goes away, c1 unchanged: one response with only the removal.
    current = world(9300, false);
    push();
    const r2 = await s.next();
    assert.equal(r2.type_url, TypeUrl.Cluster);
    assert.equal(r2.resources?.length ?? 0, 0);
    assert.deepEqual(r2.removed_resources, ['c2']);
    assert.ok(await s.quiet(200), 'EDS for c1 unchanged');
  } finally {
    s.close();
  }
  // Reconnect telling the server what we have: only what differs is sent.
  const again = deltaStream(port);
  try {
    again.send({ node: node('d1'), type_url: TypeUrl.Cluster, initial_resource_versions: { c1: c1Version, gone: 'x' } });
    const r = await again.next();
    assert.equal(r.resources?.length ?? 0, 0, 'c1 is current');
    assert.deepEqual(r.removed_resources, ['gone']);
  } finally {
    again.close();
  }
});

test('close() ends streams and stops the server', async () => {
  const gen = generatorCache(() => world(1));
  const own = createXdsServer({ cache: gen.cache });
  const p = await own.listen();
  const s = sotwStream(p);
  s.send({ node: node('x'), type_url: TypeUrl.Cluster });
  await s.next();
  await own.close(500);
  await waitFor(() => s.ended || s.error !== undefined);
  assert.equal(own.status().length, 0);
  s.close();
});

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("consistency 'reject' (the default): an inconsistent set is reported and not served; the previous one stays", async () => {
  let set = world(9400);
  const gen = generatorCache(() => set);
  const own = createXdsServer({ debounceMs: 5, cache: gen.cache });
  const p = await own.listen();
  const s = sotwStream(p);
  try {
    s.send({ node: node('strict'), type_url: TypeUrl.RouteConfiguration, resource_names: ['r1'] });
    const first = await s.next();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['r1'], version_info: first.version_info, response_nonce: first.nonce });
    set = new Map([...world(9400)].map(([t, m]) => [t, t === TypeUrl.RouteConfiguration ? new Map([['r1', routeConfig('r1', 'no-such-cluster')]]) : m]));
    gen.push();
    await own.flush();
    assert.ok(await s.quiet(200), 'nothing pushed');
    const row = own.status().find((x) => x.id === 'strict')!;
    assert.match(row.problems.join('\n'), /cluster 'no-such-cluster' is not in the set/);
    assert.equal(row.types.RDS.state, 'SYNCED');
  } finally {
    s.close();
    await own.close(200);
  }
});

test('an inconsistent first set is never served: the proxy waits until a consistent one arrives; with warn it is served', async () => {
  const broken = new Map([...world(9450)].map(([t, m]) => [t, t === TypeUrl.ClusterLoadAssignment ? new Map() : m])) as XdsResourceSet;
  let set = broken;
  const gen = generatorCache(() => set);
  const own = createXdsServer({ debounceMs: 5, cache: gen.cache });
  const warnGen = generatorCache(() => broken);
  const lax = createXdsServer({ consistency: 'warn', debounceMs: 5, cache: warnGen.cache });
  const [p, q] = [await own.listen(), await lax.listen()];
  const s = sotwStream(p);
  const w = sotwStream(q);
  try {
    s.send({ node: node('waits'), type_url: TypeUrl.Cluster });
    assert.ok(await s.quiet(200), 'no CDS while the set is inconsistent');
    assert.match(own.status().find((x) => x.id === 'waits')!.problems.join('\n'), /ClusterLoadAssignment 'c1' is not in the set/);
    set = world(9450);
    gen.push();
    const cds = await s.next();
    assert.equal(cds.type_url, TypeUrl.Cluster);
    assert.equal(cds.resources?.length, 1);
    w.send({ node: node('lax'), type_url: TypeUrl.Cluster });
    assert.equal((await w.next()).type_url, TypeUrl.Cluster);
  } finally {
    s.close();
    w.close();
    await Promise.all([own.close(200), lax.close(200)]);
  }
});

test('make before break: routes to a new EDS cluster wait until its endpoints are subscribed (or the hold expires)', async () => {
  let set = world(9500);
  const gen = generatorCache(() => set);
  const own = createXdsServer({ debounceMs: 5, warmingHoldMs: 400, cache: gen.cache });
  const p = await own.listen();
  const s = sotwStream(p);
  try {
    const ack = async (typeUrl: string, names?: string[]) => {
      const r = await s.next();
      assert.equal(r.type_url, typeUrl);
      s.send({ type_url: typeUrl, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
      return r;
    };
    s.send({ node: node('warm'), type_url: TypeUrl.Cluster });
    await ack(TypeUrl.Cluster);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['c1'] });
    const eds = await ack(TypeUrl.ClusterLoadAssignment, ['c1']);
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['r1'] });
    await ack(TypeUrl.RouteConfiguration, ['r1']);
    await own.flush();

    // r1 now routes to a new cluster c2.
    const withC2 = world(9500, true);
    set = new Map([...withC2].map(([t, m]) => [t, t === TypeUrl.RouteConfiguration ? new Map([['r1', routeConfig('r1', 'c2')]]) : m]));
    gen.push();
    const cds = await s.next();
    assert.equal(cds.type_url, TypeUrl.Cluster);
    assert.ok(await s.quiet(150), 'RDS held while c2 warms');
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['c1', 'c2'], version_info: eds.version_info, response_nonce: eds.nonce });
    const eds2 = await s.next();
    assert.equal(eds2.type_url, TypeUrl.ClusterLoadAssignment);
    assert.deepEqual(eds2.resources?.map((r) => fromAny(r).cluster_name).sort(), ['c1', 'c2']);
    assert.ok(await s.quiet(100), 'still held: CDS not ACKed yet');
    s.send({ type_url: TypeUrl.Cluster, version_info: cds.version_info, response_nonce: cds.nonce });
    const rds = await s.next();
    assert.equal(rds.type_url, TypeUrl.RouteConfiguration);
    assert.equal(fromAny(rds.resources![0]).name, 'r1');

    // A client that never subscribes the new cluster's endpoints gets the routes after the hold.
    set = new Map([...world(9501, true)].map(([t, m]) => [t,
      t === TypeUrl.Cluster ? new Map([...m, ['c3', edsCluster('c3', 1)[0]]])
      : t === TypeUrl.ClusterLoadAssignment ? new Map([...m, ['c3', endpoints('c3', 9501)]])
      : t === TypeUrl.RouteConfiguration ? new Map([['r1', routeConfig('r1', 'c3')]]) : m]));
    gen.push();
    const started = Date.now();
    const types: string[] = [];
    for (;;) {
      const r = await s.next(2000);
      types.push(r.type_url!);
      if (r.type_url === TypeUrl.RouteConfiguration) break;
    }
    assert.deepEqual(types, [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration]);
    assert.ok(Date.now() - started >= 300, `released by the hold timer (${Date.now() - started} ms)`);
  } finally {
    s.close();
    await own.close(200);
  }
});
