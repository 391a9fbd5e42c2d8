/**
 * End to end: a real control plane watching a YAML directory, a real `trellis proxy` gateway and
 * echo backends, driven only by Istio YAML. Each test rewrites the VirtualService and checks the
 * gateway's behaviour as a client sees it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEchoServer } from '../src/samples/echo-server.ts';
import type { DualServer } from '../src/samples/sniff-server.ts';
import { freePort, startControlPlane, startProxy, stopAll, waitFor, type ControlPlaneProc, type ProxyProc } from './support/mesh.ts';
import { skipUnlessTools } from './support/skip.ts';
import { findTool } from './support/tools.ts';
import { edgeVirtualService } from './support/gateway-pair.ts';

let cp: ControlPlaneProc;
let gw: ProxyProc;
let gwPort: number;
const backends: DualServer[] = [];
const seen: Record<string, string[]> = { v1: [], v2: [], mirror: [] };

function endpointSlice(name: string, service: string, port: number, version: string): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}, namespace: default, labels: {kubernetes.io/service-name: ${service}}}
addressType: IPv4
ports: [{name: http, port: ${port}, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: ${name}, namespace: default}
  deprecatedTopology: {version: ${version}}
`;
}

const base = (ports: { v1: number; v2: number; mirror: number }) => `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-v1, namespace: default}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-v2, namespace: default}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: mirror, namespace: default}
spec:
  ports: [{name: http, port: 8080}]
---
${endpointSlice('echo-v1-a', 'echo-v1', ports.v1, 'v1')}---
${endpointSlice('echo-v2-a', 'echo-v2', ports.v2, 'v2')}---
${endpointSlice('mirror-a', 'mirror', ports.mirror, 'v1')}---
${endpointSlice('echo-all-v1', 'echo', ports.v1, 'v1')}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
`;

const vs = edgeVirtualService;

/** Applies a VirtualService and waits until the gateway's behaviour shows it (probe returns true). */
async function applyVs(http: string, probe: () => Promise<boolean>): Promise<void> {
  cp.write('vs.yaml', vs(http));
  await waitFor('new routes to take effect', probe, 15_000, 100);
}

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(`http://127.0.0.1:${gwPort}${path}`, { headers, redirect: 'manual' });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

function podOf(body: string): string {
  try {
    return (JSON.parse(body) as { pod: string }).pod;
  } catch {
    return '';
  }
}

before(async () => {
  const mk = async (pod: string, log: string[]) => startEchoServer({ namespace: 'default', service: pod, pod, log: (l) => log.push(l) });
  const v1 = await mk('echo-v1-pod', seen.v1);
  const v2 = await mk('echo-v2-pod', seen.v2);
  const mirror = await mk('mirror-pod', seen.mirror);
  backends.push(v1, v2, mirror);
  cp = await startControlPlane({ 'base.yaml': base({ v1: v1.port, v2: v2.port, mirror: mirror.port }), 'vs.yaml': vs(`  - route: [{destination: {host: echo-v1}}]\n`) });
  gwPort = await freePort();
  gw = await startProxy(cp, { kind: 'router', workload: 'ingress-1', namespace: 'default', labels: { istio: 'ingressgateway' }, metadata: { TRELLIS_GATEWAY_PORTS: { '80': gwPort } } });
});

after(async () => {
  await stopAll();
  await Promise.all(backends.map((b) => b.close()));
});

test('routes through the gateway to the backend named by the VirtualService', async () => {
  const r = await waitFor('first 200', async () => {
    const x = await get('/hello');
    return x.status === 200 ? x : undefined;
  });
  assert.equal(podOf(r.body), 'echo-v1-pod');
  assert.equal(JSON.parse(r.body).path, '/hello');
});

test('weighted split 80/20 within tolerance over 400 requests', async () => {
  await applyVs(`  - route:\n    - destination: {host: echo-v1}\n      weight: 80\n    - destination: {host: echo-v2}\n      weight: 20\n`, async () => {
    for (let i = 0; i < 30; i++) if (podOf((await get('/w')).body) === 'echo-v2-pod') return true;
    return false;
  });
  let v2 = 0;
  const n = 400;
  for (let i = 0; i < n; i++) if (podOf((await get('/w')).body) === 'echo-v2-pod') v2++;
  const share = v2 / n;
  assert.ok(Math.abs(share - 0.2) <= 0.06, `v2 share ${share}`);
});

test('header match, prefix rewrite and fault abort', async () => {
  await applyVs(
    `  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo-v2}}]
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new}
    route: [{destination: {host: echo-v1}}]
  - match: [{uri: {prefix: /broken}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: echo-v1}}]
  - route: [{destination: {host: echo-v1}}]
`,
    async () => (await get('/broken')).status === 418,
  );
  assert.equal(podOf((await get('/', { 'end-user': 'bob' })).body), 'echo-v1-pod');
  const rw = await get('/old/thing?q=1');
  assert.equal(JSON.parse(rw.body).path, '/new/thing?q=1');
  const ab = await get('/broken');
  assert.equal(ab.status, 418);
  assert.match(ab.body, /fault filter abort/);
});

test('retries mask a backend that fails twice; redirect and direct response', async () => {
  await applyVs(
    `  - match: [{uri: {prefix: /retry}}]
    retries: {attempts: 3, retryOn: "5xx"}
    route: [{destination: {host: echo-v1}}]
  - match: [{uri: {exact: /moved}}]
    redirect: {uri: /elsewhere, redirectCode: 301}
  - match: [{uri: {exact: /static}}]
    directResponse: {status: 204}
  - route: [{destination: {host: echo-v1}}]
`,
    async () => (await get('/static')).status === 204,
  );
  const r = await get(`/retry/x?uuid=${Date.now()}&succeedAfter=2&responseCode=503`);
  assert.equal(r.status, 200);
  const m = await get('/moved');
  assert.equal(m.status, 301);
  assert.match(m.headers.get('location') ?? '', /\/elsewhere$/);
});

test('mirroring sends a copy to the mirror service, with -shadow host', async () => {
  await applyVs(`  - route: [{destination: {host: echo-v1}}]\n    mirror: {host: mirror}\n    mirrorPercentage: {value: 100}\n`, async () => {
    const tag = `/mirror-probe-${Date.now()}`;
    await get(tag);
    await new Promise((r) => setTimeout(r, 100));
    return seen.mirror.some((l) => l.includes(tag));
  });
  const tag = `/mirrored-${Date.now()}`;
  const r = await get(tag);
  assert.equal(podOf(r.body), 'echo-v1-pod');
  await waitFor('mirror copy', () => seen.mirror.some((l) => l.includes(tag)), 5000);
});

test('VirtualService header values are Envoy format strings; one Envoy would reject is held back with the last good config serving', async () => {
  await applyVs(
    `  - headers:
      request:
        set: {x-client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", x-user-copy: "%REQ(end-user?x-fallback)%", x-literal: "100%%"}
      response:
        set: {x-upstream-cluster: "%UPSTREAM_CLUSTER%", x-status: "%RESPONSE_CODE%"}
    route: [{destination: {host: echo-v1}}]
`,
    async () => (await get('/fmt')).headers.get('x-status') === '200',
  );
  const r = await get('/fmt', { 'end-user': 'jason' });
  const seenHeaders = (JSON.parse(r.body) as { headers: Record<string, string[]> }).headers;
  const one = (name: string) => Object.entries(seenHeaders).find(([k]) => k.toLowerCase() === name)?.[1]?.[0];
  assert.equal(one('x-client'), '127.0.0.1');
  assert.equal(one('x-user-copy'), 'jason');
  assert.equal(one('x-literal'), '100%');
  assert.equal(r.headers.get('x-upstream-cluster'), 'outbound|8080||echo-v1.default.svc.cluster.local');
  const fallback = (JSON.parse((await get('/fmt', { 'x-fallback': 'fb' })).body) as { headers: Record<string, string[]> }).headers;
  assert.equal(Object.entries(fallback).find(([k]) => k.toLowerCase() === 'x-user-copy')?.[1]?.[0], 'fb');

  // A literal percent would be NACKed by every proxy: the analyzer holds it back instead.
  cp.write('vs.yaml', vs(`  - headers: {response: {set: {x-discount: "50%"}}}
    route: [{destination: {host: echo-v2}}]
`));
  const diags = await waitFor('HEADER_VALUE_INVALID at the debug endpoint', async () => {
    const d = (await (await fetch(`http://127.0.0.1:${cp.debugPort}/debug/diagnostics`)).json()) as { code: string; message: string }[];
    return d.some((x) => x.code === 'HEADER_VALUE_INVALID') ? d : undefined;
  });
  assert.match(diags.find((d) => d.code === 'HEADER_VALUE_INVALID')!.message, /Couldn't find valid command at position 2/);
  const still = await get('/fmt');
  assert.equal(podOf(still.body), 'echo-v1-pod', 'the last good VirtualService keeps serving');
  const mine = (await cp.syncz()).find((s) => s.id === gw.nodeId)!;
  for (const t of Object.values(mine.types)) assert.notEqual(t.state, 'NACKED', JSON.stringify(mine.types));
});

test('broken YAML keeps the last good config serving', async () => {
  cp.write('vs.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: edge, namespace: default\nspec: [');
  const diags = await waitFor('diagnostics for the broken file', async () => {
    const d = (await (await fetch(`http://127.0.0.1:${cp.debugPort}/debug/diagnostics`)).json()) as { code: string; file?: string }[];
    return d.some((x) => x.code === 'YAML_SYNTAX') ? d : undefined;
  });
  assert.ok(diags.some((d) => d.code === 'YAML_SYNTAX' && d.file?.endsWith('vs.yaml')), JSON.stringify(diags).slice(0, 500));
  assert.ok(diags.some((d) => d.code === 'LAST_KNOWN_GOOD'), JSON.stringify(diags).slice(0, 500));
  assert.equal((await get('/still')).status, 200);
  const status = await cp.syncz();
  const mine = status.find((s) => s.id === gw.nodeId)!;
  for (const t of Object.values(mine.types)) assert.notEqual(t.state, 'NACKED', JSON.stringify(mine.types));
});

test('absolute-form requests (HTTP proxy style) route on the URL host and path', async () => {
  const { request } = await import('node:http');
  const body = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gwPort, path: 'http://some.host:8080/abs/path?q=1', headers: { host: 'ignored.example' } }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  const echoed = JSON.parse(body) as { path: string; host: string };
  assert.equal(echoed.path, '/abs/path?q=1');
  assert.equal(echoed.host, 'some.host:8080');
});

test('a route timeout answers 504 upstream request timeout', async () => {
  await applyVs(`  - match: [{uri: {prefix: /slow}}]\n    timeout: 0.5s\n    route: [{destination: {host: echo-v1}}]\n  - route: [{destination: {host: echo-v1}}]\n`, async () => (await get('/slow?delay=2s')).status === 504);
  const t0 = Date.now();
  const r = await get('/slow?delay=3s');
  assert.equal(r.status, 504);
  assert.equal(r.body, 'upstream request timeout');
  // A 504 at all means the timeout fired before the 3 s answer; not before its 0.5 s either.
  const took = Date.now() - t0;
  assert.ok(took >= 450, `504 after ${took} ms`);
});

test('an Istio Gateway HTTPS server with credentialName gets its certificate by SDS from a Kubernetes Secret; rewriting the Secret rotates it for new connections', { skip: skipUnlessTools('openssl', 'curl') }, async () => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-sds-'));
  try {
    // Two self-signed certificates for the same name: a client trusting only one of them tells which the gateway serves.
    for (const n of ['', '2']) {
      execFileSync(findTool('openssl')!, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=secure.example.com${n}`, '-addext', 'subjectAltName=DNS:secure.example.com', '-keyout', join(dir, `key${n}.pem`), '-out', join(dir, `cert${n}.pem`)], { stdio: 'ignore' });
    }
    const b64 = (f: string) => readFileSync(join(dir, f)).toString('base64');
    const httpsPort = await freePort();
    const secret = (n: string) => `apiVersion: v1
kind: Secret
metadata: {name: secure-cert, namespace: default}
type: kubernetes.io/tls
data: {tls.crt: ${b64(`cert${n}.pem`)}, tls.key: ${b64(`key${n}.pem`)}}
`;
    cp.write('secret.yaml', secret(''));
    cp.write('tls.yaml', `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-tls, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [secure.example.com]
    tls: {mode: SIMPLE, credentialName: secure-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com]
  gateways: [gw-tls]
  http: [{route: [{destination: {host: echo-v2}}]}]
`);
    // The gateway proxy must learn the new port mapping: start a second gateway with 443 mapped.
    const gw2 = await startProxy(cp, { kind: 'router', workload: 'ingress-tls', namespace: 'default', labels: { istio: 'ingressgateway' }, metadata: { TRELLIS_GATEWAY_PORTS: { '80': await freePort(), '443': httpsPort } } });
    const { execFile } = await import('node:child_process');
    /** A new connection trusting only `cert${n}.pem`: the body when the gateway serves that certificate, '' when not. */
    const curl = (n = ''): Promise<string> => new Promise((resolve) => {
      execFile(findTool('curl')!, ['-s', '--cacert', join(dir, `cert${n}.pem`), '--resolve', `secure.example.com:${httpsPort}:127.0.0.1`, `https://secure.example.com:${httpsPort}/tls`], (_e, out) => resolve(out));
    });
    const out = await waitFor('HTTPS through the gateway with the SDS certificate', async () => {
      const o = await curl();
      return podOf(o) === 'echo-v2-pod' ? o : undefined;
    });
    assert.equal(JSON.parse(out).path, '/tls');
    assert.equal(await curl('2'), '', 'the second certificate is not served yet');
    const status = (await cp.syncz()).find((s) => s.id === gw2.nodeId)!;
    assert.equal(status.types.SDS?.state, 'SYNCED', JSON.stringify(status.types));

    // Rotation: the Secret file rewritten with the second certificate reaches the gateway over SDS.
    cp.write('secret.yaml', secret('2'));
    const rotated = await waitFor('new connections get the rotated certificate', async () => {
      const o = await curl('2');
      return podOf(o) === 'echo-v2-pod' ? o : undefined;
    });
    assert.equal(JSON.parse(rotated).path, '/tls');
    assert.equal(await curl(), '', 'the first certificate is no longer served');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
