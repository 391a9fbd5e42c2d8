/**
 * A stock Envoy bootstrapped against our ADS server (SotW and delta): it must accept a
 * hand-built listener -> route -> cluster -> endpoints set without a NACK, show it in its
 * /config_dump, proxy an HTTP request to a local backend, and follow a push to a new backend.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createXdsServer } from '../src/control/xds/server.ts';
import { envoySet, generatorCache } from '../src/control/xds/testdata/resource-sets.ts';
import { TypeUrl } from '../src/xds/types.ts';
import { findTool } from './support/tools.ts';
import { freePort } from './support/processes.ts';
import { skipUnlessTools } from './support/skip.ts';

const cleanups: Array<() => void | Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});


async function backend(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    res.setHeader('x-backend', name);
    res.end(`${name} ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { server, port: (server.address() as { port: number }).port };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

function startEnvoy(opts: { xdsPort: number; nodeId: string; delta: boolean; dir: string }): { child: ChildProcess; adminPath: string; log: () => string } {
  const http2 = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  };
  const bootstrap = {
    node: { id: opts.nodeId, cluster: 'test', metadata: { NAMESPACE: 'default' } },
    dynamic_resources: {
      ads_config: {
        api_type: opts.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }],
        set_node_on_first_message_only: true,
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [
        {
          name: 'xds',
          type: 'STATIC',
          connect_timeout: '1s',
          typed_extension_protocol_options: http2,
          load_assignment: {
            cluster_name: 'xds',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: opts.xdsPort } } } }] }],
          },
        },
      ],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
  const config = join(opts.dir, `envoy-${opts.nodeId}.json`);
  const adminPath = join(opts.dir, `admin-${opts.nodeId}.txt`);
  writeFileSync(config, JSON.stringify(bootstrap));
  const baseId = 10_000 + Math.floor(Math.random() * 50_000);
  const child = spawn(
    findTool('envoy') as string,
    ['-c', config, '--base-id', String(baseId), '--admin-address-path', adminPath, '--log-level', 'warn', '--disable-hot-restart'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  );
  return { child, adminPath, log: () => output };
}

for (const delta of [false, true]) {
  test(`stock Envoy over ${delta ? 'delta' : 'SotW'} ADS: accepts the set, proxies a request, follows a push, NACKs a bad route`, { skip: skipUnlessTools('envoy'), timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-envoy-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const b1 = await backend('one');
    const b2 = await backend('two');
    const listenPort = await freePort();
    let backendPort = b1.port;
    let badRegex = false;
    const generate = () => {
      const set = envoySet({ listenPort, backendPort });
      if (!badRegex) return set;
      const bad = { name: 'http-routes', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(unclosed' } }, route: { cluster: 'backend' } }] }] };
      return new Map([...set].map(([t, m]) => [t, t === TypeUrl.RouteConfiguration ? new Map([['http-routes', bad]]) : m]));
    };
    const gen = generatorCache(generate);
    const xds = createXdsServer({ debounceMs: 10, cache: gen.cache });
    const xdsPort = await xds.listen();
    cleanups.push(() => xds.close(500));
    const nodeId = `envoy-${delta ? 'delta' : 'sotw'}-${process.pid}`;
    const envoy = startEnvoy({ xdsPort, nodeId, delta, dir });

    const row = await waitFor('Envoy to ACK all four types', () => {
      const r = xds.status().find((p) => p.id === nodeId);
      if (envoy.child.exitCode !== null) throw new Error(`envoy exited: ${envoy.log()}`);
      const nacked = Object.values(r?.types ?? {}).find((t) => t.state === 'NACKED');
      if (nacked !== undefined) throw new Error(`NACK: ${nacked.nackError}`);
      return ['CDS', 'EDS', 'LDS', 'RDS'].every((t) => r?.types[t]?.state === 'SYNCED') ? r : undefined;
    });
    assert.equal(row.mode, delta ? 'delta' : 'sotw');

    const admin = await waitFor('admin address', () => existsSync(envoy.adminPath) && readFileSync(envoy.adminPath, 'utf8').trim());
    const dump = await waitFor('config_dump', async () => {
      const res = await get(Number(admin.split(':').pop()), '/config_dump');
      return res.status === 200 ? (JSON.parse(res.body) as { configs: Array<Record<string, unknown>> }) : undefined;
    });
    const text = JSON.stringify(dump);
    assert.ok(text.includes('"http-routes"'), 'route config in config_dump');
    assert.ok(text.includes('"backend"'), 'cluster in config_dump');

    const first = await waitFor('request through Envoy', async () => {
      const r = await get(listenPort, '/hello');
      return r.status === 200 ? r : undefined;
    });
    assert.equal(first.body, 'one /hello');

    backendPort = b2.port;
    gen.push({ reason: 'backend moved' });
    const second = await waitFor('request to follow the push', async () => {
      const r = await get(listenPort, '/again');
      return r.body === 'two /again' ? r : undefined;
    });
    assert.equal(second.status, 200);
    const after = xds.status().find((p) => p.id === nodeId)!;
    assert.ok(Object.values(after.types).every((t) => t.state !== 'NACKED'));
    assert.equal(xds.configDump(nodeId)?.types.EDS.resources.length, 1);

    // A route Envoy rejects: NACKED with Envoy's message, and the old routes keep serving.
    badRegex = true;
    gen.push({ reason: 'bad regex' });
    const nacked = await waitFor('Envoy to NACK the bad route', () => {
      const t = xds.status().find((p) => p.id === nodeId)?.types.RDS;
      return t?.state === 'NACKED' ? t : undefined;
    });
    assert.match(nacked.nackError ?? '', /missing \)/);
    assert.notEqual(nacked.nackVersion, nacked.ackedVersion);
    assert.equal((await get(listenPort, '/still')).body, 'two /still');
  });
}
