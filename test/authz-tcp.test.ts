/**
 * AuthorizationPolicy on a TCP port (L4): the network RBAC filter before tcp_proxy, on a Trellis
 * sidecar and a stock Envoy fed by the same control plane. An ALLOW on source IP blocks admits or
 * refuses the connection; a DENY that uses an HTTP-only field (paths) on TCP drops that field and
 * so refuses every connection, as Istio documents (TCP never allows more than the policy says).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Cleanups, freePort, startControlProcess, startEnvoy, tempDir, waitFor, type ControlProcess } from './support/processes.ts';
import { startProxy } from './support/mesh.ts';
import { writeConfig } from './support/mesh-yaml.ts';
import { skipUnlessTools } from './support/skip.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

const base = `apiVersion: v1
kind: Service
metadata: { name: db, namespace: shop }
spec: { ports: [{ name: tcp-db, port: 3306 }], selector: { app: db } }
`;
const allowFrom = (cidr: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-clients, namespace: shop }
spec:
  selector: { matchLabels: { app: db } }
  action: ALLOW
  rules:
  - from: [{ source: { ipBlocks: ["${cidr}"] } }]
    to: [{ operation: { ports: ["3306"] } }]
`;
const denyHttpOnly = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-deny-admin, namespace: shop }
spec:
  selector: { matchLabels: { app: db } }
  action: DENY
  rules:
  - to: [{ operation: { paths: ["/admin"] } }]
`;

let cp: ControlProcess;
let configDir = '';
const port: Record<'trellis' | 'envoy', number> = { trellis: 0, envoy: 0 };

/** Connects, sends a line, and resolves with what came back ('' when the proxy closed the connection). */
function echo(p: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(p, '127.0.0.1');
    let got = '';
    s.setTimeout(3000, () => s.destroy());
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\n')) s.end();
    });
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    s.write('ping\n');
  });
}

before(async () => {
  if (skipUnlessTools('envoy')) return;
  const app = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  cleanups.add(() => app.close());
  const appPort = (app.address() as net.AddressInfo).port;
  const dir = tempDir(cleanups);
  configDir = `${dir}/config`;
  mkdirSync(configDir);
  writeConfig(configDir, 'base.yaml', base);
  writeConfig(configDir, 'policy.yaml', allowFrom('127.0.0.0/8'));
  cp = await startControlProcess(cleanups, configDir, ['--log-level', 'warn']);
  port.trellis = await freePort();
  port.envoy = await freePort();
  const meta = async (inbound: number) => ({
    NAMESPACE: 'shop', LABELS: { app: 'db' }, TRELLIS_INBOUND_ADDRESS: '127.0.0.1', TRELLIS_INBOUND_PORTS: { 3306: inbound },
    TRELLIS_APP_PORTS: { 3306: appPort }, TRELLIS_OUTBOUND_PORTS: { 3306: await freePort() },
  });
  const trellis = await startProxy(cp, { namespace: 'shop', workload: 'db-trellis', labels: { app: 'db' }, metadata: await meta(port.trellis) });
  cleanups.add(() => trellis.stop());
  await startEnvoy(cleanups, { xdsPort: cp.xdsPort, nodeId: 'sidecar~127.0.0.1~db-envoy.shop~shop.svc.cluster.local', metadata: await meta(port.envoy), dir });
  for (const side of ['trellis', 'envoy'] as const) await waitFor(`${side} TCP inbound`, async () => (await echo(port[side])) === 'ping\n', 60_000, 200);
});

test('an ALLOW on source IP blocks admits or refuses TCP connections, on both data planes', { skip: skipUnlessTools('envoy'), timeout: 60_000 }, async () => {
  for (const side of ['trellis', 'envoy'] as const) assert.equal(await echo(port[side]), 'ping\n', side);
  writeConfig(configDir, 'policy.yaml', allowFrom('10.0.0.0/8'));
  for (const side of ['trellis', 'envoy'] as const) await waitFor(`${side} refuses 127.0.0.1`, async () => (await echo(port[side])) === '', 20_000, 200);
});

test('a DENY with an HTTP-only field refuses every TCP connection (Istio: the field is dropped on TCP)', { skip: skipUnlessTools('envoy'), timeout: 60_000 }, async () => {
  writeConfig(configDir, 'policy.yaml', allowFrom('127.0.0.0/8'));
  for (const side of ['trellis', 'envoy'] as const) await waitFor(`${side} admits again`, async () => (await echo(port[side])) === 'ping\n', 20_000, 200);
  writeConfig(configDir, 'deny.yaml', denyHttpOnly);
  for (const side of ['trellis', 'envoy'] as const) await waitFor(`${side} refuses all`, async () => (await echo(port[side])) === '', 20_000, 200);
});
