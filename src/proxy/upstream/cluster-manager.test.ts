import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../../errors.ts';
import { ManualClock } from './clock.ts';
import { createClusterManager } from './cluster-manager.ts';
import { seededRandom } from './lb/types.ts';
import { assignment, get, h1Backend, staticCluster } from './test-support.ts';
import { UpstreamError } from './types.ts';

function edsCluster(name: string, extra: Record<string, unknown> = {}) {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: `${name}-svc` }, connect_timeout: '1s', ...extra };
}

const invalidInputs: [string, unknown, RegExp][] = [
  ['missing name', { type: 'STATIC' }, /cluster.name: required/],
  ['bad duration', { name: 'c', type: 'EDS', connect_timeout: '5 seconds' }, /cluster 'c'.connect_timeout: invalid duration/],
  ['unknown lb policy', { name: 'c', type: 'EDS', lb_policy: 'FANCY' }, /lb_policy: unknown value/],
  ['unknown type', { name: 'c', type: 'MAGIC' }, /type: unknown value/],
  ['logical dns without assignment', { name: 'c', type: 'LOGICAL_DNS' }, /load_assignment: required/],
  ['logical dns with two endpoints', { name: 'c', type: 'LOGICAL_DNS', load_assignment: assignment('c', [{ endpoints: [{ port: 1 }, { port: 2 }] }]) }, /exactly one endpoint/],
  ['static with a DNS name', staticCluster('c', [80], { load_assignment: assignment('c', [{ endpoints: [{ address: 'example.com', port: 80 }] }]) }), /must be an IP address/],
  ['port out of range', staticCluster('c', [70000]), /load_assignment.endpoints\[0\].lb_endpoints\[0\].endpoint.address.socket_address.port_value/],
  ['zero endpoint weight', { name: 'c', type: 'STATIC', load_assignment: assignment('c', [{ endpoints: [{ port: 1, weight: 0 }] }]) }, /load_balancing_weight: must be at least 1/],
  ['non-contiguous priorities', { name: 'c', type: 'STATIC', load_assignment: assignment('c', [{ priority: 1, endpoints: [{ port: 1 }] }]) }, /priority 0 is missing/],
  ['bad circuit breaker', { name: 'c', type: 'EDS', circuit_breakers: { thresholds: [{ max_requests: -1 }] } }, /circuit_breakers.thresholds\[0\].max_requests/],
  ['bad outlier percent', { name: 'c', type: 'EDS', outlier_detection: { max_ejection_percent: 150 } }, /outlier_detection.max_ejection_percent/],
  ['ring sizes inverted', { name: 'c', type: 'EDS', lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: 100, maximum_ring_size: 10 } }, /minimum_ring_size/],
  ['maglev size not prime', { name: 'c', type: 'EDS', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 1000 } }, /table_size: must be a prime/],
  ['unsupported transport socket', { name: 'c', type: 'EDS', transport_socket: { name: 'x', typed_config: { '@type': 'type.googleapis.com/foo.Bar' } } }, /unsupported transport socket type/],
  ['missing TLS file', { name: 'c', type: 'EDS', transport_socket: { name: 'tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: { validation_context: { trusted_ca: { filename: '/nonexistent/ca.pem' } } } } } }, /trusted_ca.filename: cannot read/],
  ['bad SAN type', { name: 'c', type: 'EDS', transport_socket: { name: 'tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: { validation_context: { match_typed_subject_alt_names: [{ san_type: 'FOO', matcher: { exact: 'x' } }] } } } } }, /san_type: unsupported SAN type/],
  ['not an object', 'cluster', /expected an object/],
  ['SAN matchers without a CA', { name: 'c', type: 'EDS', transport_socket: { name: 'tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: { validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'x' } }] } } } } }, /without trusted_ca is insecure/],
];

for (const [what, json, message] of invalidInputs) {
  test(`invalid cluster is rejected with resource and field: ${what}`, () => {
    const cm = createClusterManager();
    assert.throws(() => cm.update([json as Record<string, unknown>], new Map()), (err: unknown) => hasCode(err, 'XDS_INVALID') && message.test((err as Error).message));
  });
}

test('an invalid update changes nothing (atomic) and duplicate names are rejected', async () => {
  const b = await h1Backend('a');
  const cm = createClusterManager();
  cm.update([staticCluster('good', [b.port])], new Map());
  assert.throws(() => cm.update([staticCluster('good2', [b.port]), { name: 'bad', type: 'LOGICAL_DNS' }], new Map()), /bad/);
  assert.deepEqual(cm.names(), ['good']);
  assert.throws(() => cm.update([staticCluster('x', [1]), staticCluster('x', [2])], new Map()), /duplicate/);
  assert.throws(() => cm.update([edsCluster('e')], new Map([['e-svc', { endpoints: [{ lb_endpoints: [{ endpoint: {} }] }] }]])), /cluster load assignment 'e-svc'.endpoints\[0\].lb_endpoints\[0\].endpoint.address: required/);
  assert.deepEqual(cm.names(), ['good']);
  assert.equal((await get(cm.get('good')!)).body, 'a');
  await cm.close();
  await b.close();
});

test('a STATIC cluster without hosts is accepted (Istio BlackHoleCluster) and answers UH', async () => {
  const cm = createClusterManager();
  cm.update([{ name: 'BlackHoleCluster', type: 'STATIC', connect_timeout: '10s' }], new Map());
  await assert.rejects(get(cm.get('BlackHoleCluster')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UH');
  await cm.close();
});

test('unchanged clusters keep their state; changed are rebuilt; removed are gone', async () => {
  const b = await h1Backend('a');
  const cm = createClusterManager();
  cm.update([staticCluster('keep', [b.port]), staticCluster('change', [b.port]), staticCluster('drop', [b.port])], new Map());
  const keep = cm.get('keep');
  const change = cm.get('change');
  await get(keep!);
  cm.update([staticCluster('keep', [b.port]), staticCluster('change', [b.port], { connect_timeout: '2s' })], new Map());
  assert.equal(cm.get('keep'), keep);
  assert.notEqual(cm.get('change'), change);
  assert.equal(cm.get('drop'), undefined);
  assert.equal(cm.stats().get('keep')!.upstream_rq_total, 1);
  await cm.close();
  await b.close();
});

test('EDS: endpoints arrive later, hosts keep identity across updates, UNHEALTHY/DRAINING excluded', async () => {
  const a = await h1Backend('a');
  const b = await h1Backend('b');
  const cm = createClusterManager({ random: seededRandom(1) });
  cm.update([edsCluster('e')], new Map());
  await assert.rejects(get(cm.get('e')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UH');
  cm.updateAssignments(new Map([['e-svc', assignment('e-svc', [{ endpoints: [{ port: a.port }, { port: b.port, health: 'UNHEALTHY' }] }])]]));
  for (let i = 0; i < 4; i++) assert.equal((await get(cm.get('e')!)).body, 'a');
  cm.updateAssignments(new Map([['e-svc', assignment('e-svc', [{ endpoints: [{ port: a.port, health: 'DRAINING' }, { port: b.port }] }])]]));
  for (let i = 0; i < 4; i++) assert.equal((await get(cm.get('e')!)).body, 'b');
  const snap = cm.status()[0];
  assert.equal(snap.hosts.length, 2);
  assert.equal(snap.hosts[0].healthFlags, '/eds_status_draining');
  assert.equal(snap.hosts[0].counters.rqTotal, 4, 'host a kept its counters across the EDS update');
  assert.equal(snap.stats.membership_healthy, 1);
  await cm.close();
  await a.close();
  await b.close();
});

test('priority failover: P1 takes load only as P0 loses health (overprovisioning 1.4)', async () => {
  const p0 = await h1Backend('p0');
  const p1 = await h1Backend('p1');
  const cm = createClusterManager({ random: seededRandom(5) });
  const eps = (healthy: number) => Array.from({ length: 10 }, (_, i) => ({ port: p0.port, address: `127.0.0.${i + 1}`, health: i < healthy ? 'HEALTHY' : 'UNHEALTHY' }));
  const la = (healthy: number) => assignment('e-svc', [{ priority: 0, endpoints: eps(healthy) }, { priority: 1, endpoints: [{ port: p1.port }] }]);
  cm.update([edsCluster('e')], new Map([['e-svc', la(10)]]));
  const loads = () => cm.status()[0].priorities.map((p) => Math.round(p.load * 100));
  assert.deepEqual(loads(), [100, 0]);
  cm.updateAssignments(new Map([['e-svc', la(8)]]));
  assert.deepEqual(loads(), [100, 0], '80% healthy x 1.4 >= 100%');
  cm.updateAssignments(new Map([['e-svc', la(5)]]));
  assert.deepEqual(loads(), [70, 30]);
  cm.updateAssignments(new Map([['e-svc', la(0)]]));
  assert.deepEqual(loads(), [0, 100]);
  // Real traffic: all of P0 unhealthy -> everything reaches P1.
  for (let i = 0; i < 3; i++) assert.equal((await get(cm.get('e')!)).body, 'p1');
  await cm.close();
  await p0.close();
  await p1.close();
});

test('panic: below the panic threshold a priority balances over all its hosts', () => {
  const cm = createClusterManager();
  const la = assignment('e-svc', [{ endpoints: [{ port: 1, health: 'HEALTHY' }, { port: 2, health: 'UNHEALTHY' }, { port: 3, health: 'UNHEALTHY' }] }]);
  cm.update([edsCluster('e')], new Map([['e-svc', la]]));
  assert.deepEqual(cm.status()[0].priorities, [{ priority: 0, load: 1, panic: true }]);
  cm.update([edsCluster('e', { common_lb_config: { healthy_panic_threshold: { value: 0 } } })], new Map([['e-svc', la]]));
  assert.deepEqual(cm.status()[0].priorities, [{ priority: 0, load: 1, panic: false }]);
  void cm.close();
});

test('locality-weighted LB splits by locality weight and fails over when a locality is unhealthy', async () => {
  const z1 = await h1Backend('z1');
  const z2 = await h1Backend('z2');
  const cm = createClusterManager({ random: seededRandom(2) });
  const la = (z1Health: string) => assignment('e-svc', [
    { zone: 'z1', weight: 3, endpoints: [{ port: z1.port, health: z1Health }] },
    { zone: 'z2', weight: 1, endpoints: [{ port: z2.port }] },
  ]);
  cm.update([edsCluster('e', { common_lb_config: { locality_weighted_lb_config: {}, healthy_panic_threshold: { value: 0 } } })], new Map([['e-svc', la('HEALTHY')]]));
  const counts = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const r = await get(cm.get('e')!);
    counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
  }
  assert.deepEqual([counts.get('z1'), counts.get('z2')], [30, 10]);
  cm.updateAssignments(new Map([['e-svc', la('UNHEALTHY')]]));
  for (let i = 0; i < 5; i++) assert.equal((await get(cm.get('e')!)).body, 'z2');
  await cm.close();
  await z1.close();
  await z2.close();
});

test('STRICT_DNS resolves localhost and re-resolves on dns_refresh_rate', async () => {
  const b = await h1Backend('dns');
  const clock = new ManualClock();
  let answer = ['127.0.0.1'];
  let lookups = 0;
  const cm = createClusterManager({ clock, resolver: async (name, family) => { lookups++; assert.equal(name, 'localhost'); assert.equal(family, 'V4_ONLY'); return answer; } });
  const cluster = {
    name: 'd', type: 'STRICT_DNS', dns_lookup_family: 'V4_ONLY', dns_refresh_rate: '2s', connect_timeout: '1s',
    load_assignment: assignment('d', [{ endpoints: [{ address: 'localhost', port: b.port }] }]),
  };
  cm.update([cluster], new Map());
  await new Promise((r) => setImmediate(r));
  assert.equal((await get(cm.get('d')!)).body, 'dns');
  answer = ['127.0.0.1', '127.0.0.2'];
  clock.advance(2000);
  await new Promise((r) => setImmediate(r));
  assert.equal(lookups, 2);
  assert.deepEqual(cm.status()[0].hosts.map((h) => h.address), [`127.0.0.1:${b.port}`, `127.0.0.2:${b.port}`]);
  await cm.close();
  await b.close();
});

test('STRICT_DNS with the system resolver resolves localhost', async () => {
  const b = await h1Backend('sys');
  const cm = createClusterManager();
  cm.update([{ name: 'd', type: 'STRICT_DNS', dns_lookup_family: 'V4_ONLY', load_assignment: assignment('d', [{ endpoints: [{ address: 'localhost', port: b.port }] }]) }], new Map());
  for (let i = 0; i < 50 && cm.status()[0].hosts.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await get(cm.get('d')!)).body, 'sys');
  await cm.close();
  await b.close();
});

test('LOGICAL_DNS connects to the name per connection', async () => {
  const b = await h1Backend('logical');
  const cm = createClusterManager();
  cm.update([{ name: 'l', type: 'LOGICAL_DNS', dns_lookup_family: 'V4_ONLY', load_assignment: assignment('l', [{ endpoints: [{ address: 'localhost', port: b.port }] }]) }], new Map());
  const r = await get(cm.get('l')!);
  assert.equal(r.body, 'logical');
  assert.equal(r.endpoint, `localhost:${b.port}`);
  await cm.close();
  await b.close();
});

test('ORIGINAL_DST sends to the original destination', async () => {
  const b = await h1Backend('orig');
  const cm = createClusterManager();
  cm.update([{ name: 'o', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' }], new Map());
  await assert.rejects(get(cm.get('o')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UH');
  const r = await get(cm.get('o')!, '/', { originalDestination: { address: '127.0.0.1', port: b.port } });
  assert.equal(r.body, 'orig');
  await cm.close();
  await b.close();
});

test('outlier detection with a failing backend: ejected, traffic moves, returns after the ejection time (real time)', async (t) => {
  const good = await h1Backend('good');
  const bad = await h1Backend('bad', (_req, res) => { res.statusCode = 500; res.end('bad'); });
  const cm = createClusterManager({ random: seededRandom(3) });
  // Cleanup also when an assertion fails: an open backend would keep the test process alive.
  t.after(async () => { await cm.close(); await good.close(); await bad.close(); });
  cm.update([staticCluster('o', [good.port, bad.port], {
    lb_policy: 'ROUND_ROBIN',
    outlier_detection: { consecutive_5xx: 3, interval: '0.05s', base_ejection_time: '0.2s', max_ejection_percent: 50 },
  })], new Map());
  const c = cm.get('o')!;
  let fails = 0;
  const started = Date.now();
  for (let i = 0; i < 10; i++) if ((await get(c)).status === 500) fails++;
  assert.equal(fails, 3, 'three 5xx then the bad host is ejected');
  let snap = cm.status()[0];
  assert.equal(snap.stats['outlier_detection.ejections_active'], 1);
  assert.equal(snap.hosts.find((h) => h.address.endsWith(`:${bad.port}`))!.healthFlags, '/failed_outlier_check');
  for (let i = 0; i < 5; i++) assert.equal((await get(c)).body, 'good');
  // Back after base_ejection_time (0.2 s) at the next interval sweep; a loaded machine may run the
  // sweep's timer late, so wait for it (bounded) rather than a fixed 350 ms.
  while (cm.status()[0].stats['outlier_detection.ejections_active'] !== 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 25));
  assert.ok(Date.now() - started >= 200, 'not back before the ejection time');
  snap = cm.status()[0];
  assert.equal(snap.stats['outlier_detection.ejections_active'], 0);
  assert.equal(snap.stats['outlier_detection.ejections_enforced_total'], 1);
  const bodies = new Set<string>();
  for (let i = 0; i < 4; i++) bodies.add((await get(c)).body);
  assert.ok(bodies.has('bad'), 'the host is back in rotation');
});

test('ring hash cluster keeps a key on one endpoint', async () => {
  const backends = await Promise.all(['a', 'b', 'c'].map((n) => h1Backend(n)));
  const cm = createClusterManager();
  cm.update([staticCluster('h', backends.map((b) => b.port), { lb_policy: 'RING_HASH' })], new Map());
  const first = (await get(cm.get('h')!, '/', { hashKey: 'user-42' })).body;
  for (let i = 0; i < 5; i++) assert.equal((await get(cm.get('h')!, '/', { hashKey: 'user-42' })).body, first);
  await cm.close();
  await Promise.all(backends.map((b) => b.close()));
});
