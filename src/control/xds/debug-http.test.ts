import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TypeUrl } from '../../xds/types.ts';
import { createDebugHttpServer, type DebugHttpServer } from './debug-http.ts';
import { createXdsServer, type XdsServer } from './server.ts';
import { sotwStream, type TestStream } from './testdata/ads-test-client.ts';
import { envoySet, generatorCache } from './testdata/resource-sets.ts';
import type { DiscoveryRequestMsg, DiscoveryResponseMsg } from '../../xds/ads-wire.ts';

let xds: XdsServer;
let debug: DebugHttpServer;
let base = '';
let stream: TestStream<DiscoveryRequestMsg, DiscoveryResponseMsg>;
let ready = true;
const nodeId = 'sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local';

before(async () => {
  xds = createXdsServer({ cache: generatorCache(() => envoySet({ listenPort: 15001, backendPort: 9080, cluster: 'outbound|9080||reviews.default.svc.cluster.local' })).cache });
  const port = await xds.listen();
  debug = createDebugHttpServer({ xds, diagnostics: () => [{ code: 'IST0101', message: 'x' }], ready: () => ready });
  base = `http://127.0.0.1:${await debug.listen()}`;
  // One connected proxy: CDS ACKed, EDS NACKed, LDS and RDS sent.
  stream = sotwStream(port);
  stream.send({ node: { id: nodeId }, type_url: TypeUrl.Cluster });
  const cds = await stream.next();
  stream.send({ type_url: TypeUrl.Cluster, version_info: cds.version_info, response_nonce: cds.nonce });
  stream.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['outbound|9080||reviews.default.svc.cluster.local'] });
  const eds = await stream.next();
  stream.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: eds.nonce, resource_names: ['outbound|9080||reviews.default.svc.cluster.local'], error_detail: { message: 'bad endpoint' } });
  stream.send({ type_url: TypeUrl.Listener });
  await stream.next();
  stream.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['http-routes'] });
  await stream.next();
  await xds.flush();
});
after(async () => {
  stream.close();
  await debug.close();
  await xds.close(200);
});

async function get(path: string, method = 'GET'): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(base + path, { method });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

test('/debug/syncz lists the proxy with per-type states', async () => {
  const r = await get('/debug/syncz');
  assert.equal(r.status, 200);
  const rows = JSON.parse(r.text) as Array<{ id: string; types: Record<string, { state: string; nackError?: string }> }>;
  assert.equal(rows.length, 1);
  assert.equal(rows[0].id, nodeId);
  assert.equal(rows[0].types.CDS.state, 'SYNCED');
  assert.equal(rows[0].types.EDS.state, 'NACKED');
  assert.equal(rows[0].types.EDS.nackError, 'bad endpoint');
  assert.equal(rows[0].types.LDS.state, 'STALE');
});

test('/debug/config_dump by id and by unique prefix; errors for missing and unknown ids', async () => {
  const full = JSON.parse((await get(`/debug/config_dump?proxyID=${encodeURIComponent(nodeId)}`)).text) as { types: Record<string, { resources: unknown[] }> };
  assert.equal(full.types.CDS.resources.length, 1);
  const byPrefix = await get('/debug/config_dump?proxyID=sidecar~10.1');
  assert.equal(byPrefix.status, 200);
  const missing = await get('/debug/config_dump');
  assert.equal(missing.status, 400);
  const unknown = await get('/debug/config_dump?proxyID=nope');
  assert.equal(unknown.status, 404);
  assert.deepEqual((JSON.parse(unknown.text) as { proxies: string[] }).proxies, [nodeId]);
});

test('/debug/diagnostics, /ready, /metrics, 404 and 405', async () => {
  assert.deepEqual(JSON.parse((await get('/debug/diagnostics')).text), [{ code: 'IST0101', message: 'x' }]);
  assert.equal((await get('/ready')).status, 200);
  ready = false;
  assert.equal((await get('/ready')).status, 503);
  ready = true;
  const m = await get('/metrics');
  assert.match(m.type, /text\/plain/);
  assert.match(m.text, /^trellis_xds_connected_proxies 1$/m);
  assert.match(m.text, /^trellis_xds_pushes_total\{type="CDS"\} 1$/m);
  assert.match(m.text, /^trellis_xds_rejects_total\{type="EDS"\} 1$/m);
  assert.match(m.text, /^pilot_xds 1$/m);
  assert.match(m.text, /^pilot_total_xds_rejects\{type="eds"\} 1$/m);
  assert.equal((await get('/nope')).status, 404);
  assert.equal((await get('/debug/syncz', 'POST')).status, 405);
});

let closedUrl = '';
before(async () => {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  await new Promise<void>((r) => s.close(() => r()));
});

const bin = join(import.meta.dirname, '../../../bin/trellis.js');
function trellis(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

test('trellis proxy-status: table, json, env URL, unreachable control plane', async () => {
  const t = await trellis(['proxy-status', '--control', base]);
  assert.equal(t.code, 0, t.stderr);
  const [header, row] = t.stdout.split('\n');
  assert.match(header, /^NAME\s+CDS\s+LDS\s+EDS\s+RDS\s+VERSION\s+LAST ACK$/);
  assert.match(row, new RegExp(`^${nodeId.replace(/[.~]/g, '\\$&')}\\s+SYNCED\\s+STALE\\s+NACKED\\s+STALE\\s+\\w+\\s+\\d+s ago$`));
  assert.match(t.stdout, /EDS NACKED version \w+: bad endpoint/);
  const j = await trellis(['proxy-status', '-o', 'json'], { TRELLIS_CONTROL_URL: base });
  assert.equal((JSON.parse(j.stdout) as unknown[]).length, 1);
  const down = await trellis(['proxy-status', '--control', closedUrl]);
  assert.equal(down.code, 1);
  assert.ok(down.stderr.includes(`cannot reach the control plane at ${closedUrl} (ECONNREFUSED)`), down.stderr);
  assert.equal((await trellis(['proxy-status', '-o', 'yaml', '--control', base])).code, 2);
});

test('trellis proxy-config: clusters, listeners, routes, endpoints, all, json; bad usage and unknown proxy', async () => {
  const c = await trellis(['proxy-config', 'clusters', 'sidecar~10.1', '--control', base]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^SERVICE FQDN\s+PORT\s+SUBSET\s+DIRECTION\s+TYPE\s+DESTINATION RULE$/m);
  assert.match(c.stdout, /^reviews\.default\.svc\.cluster\.local\s+9080\s+-\s+outbound\s+EDS\s+-$/m);
  const l = await trellis(['proxy-config', 'listeners', nodeId, '--control', base]);
  assert.match(l.stdout, /^http\s+127\.0\.0\.1\s+15001\s+ALL\s+Route: http-routes$/m);
  const r = await trellis(['proxy-config', 'routes', nodeId, '--control', base]);
  assert.match(r.stdout, /^http-routes\s+http-routes-vh\s+\*\s+\/\*\s+-$/m);
  const e = await trellis(['proxy-config', 'endpoints', nodeId, '--control', base]);
  assert.match(e.stdout, /^127\.0\.0\.1:9080\s+HEALTHY\s+local\s+1\s+outbound\|9080\|\|reviews/m);
  const all = await trellis(['proxy-config', 'all', nodeId, '--control', base]);
  assert.match(all.stdout, /CLUSTERS:[\s\S]*LISTENERS:[\s\S]*ROUTES:[\s\S]*ENDPOINTS:/);
  const j = await trellis(['proxy-config', 'clusters', nodeId, '-o', 'json', '--control', base]);
  assert.equal((JSON.parse(j.stdout) as Array<{ name: string }>)[0].name, 'outbound|9080||reviews.default.svc.cluster.local');
  const unknown = await trellis(['proxy-config', 'clusters', 'nope', '--control', base]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no connected proxy matches 'nope' \(connected: reviews-v1-abc\.default\) \[PROXY_NOT_FOUND\]/);
  // The replica name `trellis status` prints, istioctl's pod.namespace, and a prefix of either name the proxy.
  for (const name of ['reviews-v1-abc', 'reviews-v1-abc.default', 'reviews-v1']) {
    const byName = await trellis(['proxy-config', 'clusters', name, '--control', base]);
    assert.equal(byName.code, 0, `${name}: ${byName.stderr}`);
    assert.match(byName.stdout, /^reviews\.default\.svc\.cluster\.local\s+9080/m);
  }
  assert.equal((await trellis(['proxy-config', 'secrets', nodeId, '--control', base])).code, 2);
  assert.equal((await trellis(['proxy-config', 'clusters', '--control', base])).code, 2);
  const down = await trellis(['proxy-config', 'clusters', 'x', '--control', closedUrl]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach the control plane/);
});
