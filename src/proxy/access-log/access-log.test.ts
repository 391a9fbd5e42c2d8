/**
 * Access logs through a real DataPlane fed xDS JSON: a TCP proxy's `access_log` writes one JSON line
 * per connection (bytes each way, upstream host and cluster, a connect failure as `UF`), and an
 * HCM's text log uses Envoy's format with `-` for missing values and a status-code filter.
 * Bad access-log config (an unparsable CEL expression) is refused when the listener is applied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { DataPlane } from '../data-plane.ts';
import { TypeUrl } from '../../xds/types.ts';

const FileLog = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

function staticCluster(name: string, port: number) {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function lines(file: string, n: number): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const l = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((x) => x !== '') : [];
    if (l.length >= n) return l;
    await new Promise((r) => setTimeout(r, 50));
  }
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((x) => x !== '') : [];
}

test('TCP and HTTP access logs from a DataPlane', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-alog-'));
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const web = http.createServer((req, res) => res.writeHead(req.url === '/missing' ? 404 : 200).end('hello'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const dp = new DataPlane();
  t.after(async () => { await dp.shutdown(100); echo.close(); web.close(); });
  const dead = await freePort();
  await dp.apply(TypeUrl.Cluster, new Map(Object.entries({ echo: staticCluster('echo', (echo.address() as AddressInfo).port), dead: staticCluster('dead', dead), web: staticCluster('web', (web.address() as AddressInfo).port) })));
  const [tcpPort, deadPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const tcpLog = join(dir, 'tcp.log');
  const httpLog = join(dir, 'http.log');
  const tcpAccessLog = [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FileLog, path: tcpLog, log_format: { json_format: { bytes_received: '%BYTES_RECEIVED%', bytes_sent: '%BYTES_SENT%', upstream_host: '%UPSTREAM_HOST%', upstream_cluster: '%UPSTREAM_CLUSTER%', flags: '%RESPONSE_FLAGS%', protocol: '%PROTOCOL%', duration: '%DURATION%' } } } }];
  const tcpListener = (name: string, port: number, cluster: string) => ({ name, address: { socket_address: { address: '127.0.0.1', port_value: port } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: name, cluster, access_log: tcpAccessLog } }] }] });
  const hcm = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', stat_prefix: 'h',
    route_config: { virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }] }] },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    access_log: [{ name: 'envoy.access_loggers.file', filter: { status_code_filter: { comparison: { op: 'GE', value: { default_value: 400, runtime_key: 'x' } } } },
      typed_config: { '@type': FileLog, path: httpLog, log_format: { text_format_source: { inline_string: '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %BYTES_SENT% "%REQ(X-MISSING)%" %UPSTREAM_CLUSTER_RAW%\n' } } } }],
  };
  await dp.apply(TypeUrl.Listener, new Map(Object.entries({
    tcp: tcpListener('tcp', tcpPort, 'echo'), tcpdead: tcpListener('tcpdead', deadPort, 'dead'),
    http: { name: 'http', address: { socket_address: { address: '127.0.0.1', port_value: httpPort } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] },
  })));

  // One echoed connection: 5 bytes each way.
  await new Promise<void>((resolve, reject) => {
    const c = net.connect(tcpPort, '127.0.0.1', () => c.write('12345'));
    c.on('data', () => c.end());
    c.on('close', () => resolve());
    c.on('error', reject);
  });
  // A connection whose upstream refuses: UF.
  await new Promise<void>((resolve) => {
    const c = net.connect(deadPort, '127.0.0.1');
    c.on('close', () => resolve());
    c.on('error', () => {});
  });
  const tcp = (await lines(tcpLog, 2)).map((l) => JSON.parse(l) as Record<string, unknown>);
  const ok = tcp.find((l) => l.upstream_cluster === 'echo')!;
  assert.deepEqual({ ...ok, duration: typeof ok.duration }, { bytes_received: 5, bytes_sent: 5, upstream_host: `127.0.0.1:${(echo.address() as AddressInfo).port}`, upstream_cluster: 'echo', flags: '-', protocol: null, duration: 'number' });
  const failed = tcp.find((l) => l.upstream_cluster === 'dead')!;
  assert.equal(failed.flags, 'UF');
  assert.equal(failed.upstream_host, null);

  for (const path of ['/ok', '/missing']) {
    await new Promise<void>((resolve, reject) => http.get({ port: httpPort, path, agent: false }, (r) => { r.resume(); r.on('end', resolve); }).on('error', reject));
  }
  assert.deepEqual(await lines(httpLog, 1), ['GET /missing 404 5 "-" web'], 'only the 404 passes the filter; a missing header is -');

  // An expression that does not parse is refused with the listener (NACK), naming the field.
  const bad = { ...hcm, access_log: [{ name: 'f', filter: { extension_filter: { name: 'cel', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', expression: 'response.code >=' } } }, typed_config: { '@type': FileLog, path: httpLog } }] };
  await assert.rejects(dp.apply(TypeUrl.Listener, new Map([['http', { name: 'http', address: { socket_address: { address: '127.0.0.1', port_value: httpPort } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: bad } ] }] }]])), /access_log\[0\]\.filter\.extension_filter\.typed_config\.expression: invalid CEL expression/);
});
