/**
 * End to end with `trellis up --detach`: the egress gateway is its own process, started because a
 * Gateway selects `istio: egressgateway`, and registered as Istio's `istio-egressgateway` Service.
 * A demo workload (plain HTTP, through its sidecar as HTTP proxy) calls three "external" hosts on
 * loopback under REGISTRY_ONLY: a ServiceEntry host over plain HTTP (allowed), a ServiceEntry host
 * routed mesh -> (ISTIO_MUTUAL) egress gateway -> (TLS origination, test CA) HTTPS server, and an
 * unknown host (502 from `block_all`, never reaching its server).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessTools } from './support/skip.ts';
import { curl, eventually, livePids, logTails, readStateFile, StartTimeoutS, trellis, type CurlResult, VisibleWithinMs } from './support/trellis-up.ts';
import { egressGatewayRoutingYaml, serviceEntryYaml, startExternalServer, type ExternalServer } from './support/egress-mesh.ts';
import { testCa, tlsSecretYaml } from './support/test-pki.ts';
import type { RuntimeState } from '../src/runtime/state.ts';

const skip = skipUnlessTools('curl');

function meshYaml(plainPort: number, securePort: number, unknownPort: number, caPem: string): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata: {name: shop-v1, namespace: default, labels: {app: shop, version: v1}}
spec:
  command: [trellis, sample, demo]
  env:
    SERVICE_NAME: shop
    SERVICE_VERSION: v1
    UPSTREAMS: http://api.external.test/plain,http://secure.external.test/tls,http://unknown.external.test:${unknownPort}/leak
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: default}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: default}
spec:
  hosts: ["*"]
  gateways: [edge]
  http: [{route: [{destination: {host: shop, port: {number: 8080}}}]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
${serviceEntryYaml({ name: 'api-external', host: 'api.external.test', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], address: '127.0.0.1', endpointPorts: { http: plainPort } })}---
${serviceEntryYaml({ name: 'secure-external', host: 'secure.external.test', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 443, name: 'https', protocol: 'HTTPS' }], address: '127.0.0.1', endpointPorts: { http: securePort, https: securePort } })}---
${egressGatewayRoutingYaml('secure.external.test')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls, namespace: istio-system}
spec:
  host: secure.external.test
  workloadSelector: {matchLabels: {istio: egressgateway}}
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, credentialName: external-ca}
---
${tlsSecretYaml({ name: 'external-ca', namespace: 'istio-system', ca: caPem })}`;
}

interface ShopReply { service: string; upstream: { url: string; status: number; body?: unknown }[] }

describe('trellis up: the egress gateway process, TLS origination and REGISTRY_ONLY', { skip, timeout: 900_000 }, () => {
  let work = '';
  let stateDir = '';
  let state: RuntimeState;
  let plain: ExternalServer;
  let secure: ExternalServer;
  let unknown: ExternalServer;

  before(async () => {
    const ca = await testCa();
    plain = await startExternalServer('plain');
    secure = await startExternalServer('secure', await ca.leaf('secure', ['secure.external.test']));
    unknown = await startExternalServer('unknown');
    work = mkdtempSync(join(tmpdir(), 'trellis-egress-up-'));
    const config = join(work, 'config');
    (await import('node:fs')).mkdirSync(config);
    writeFileSync(join(config, 'mesh.yaml'), meshYaml(plain.port, secure.port, unknown.port, ca.cert));
    stateDir = join(work, 'state');
    const r = await trellis(['up', '--detach', '--config', config, '--state-dir', stateDir, '--gateway-port', '0', '--start-timeout', String(StartTimeoutS)], { cwd: work, timeoutMs: 600_000 });
    assert.equal(r.code, 0, `up failed after ${r.ms} ms: ${r.stderr}\n${r.stdout}\n${logTails(stateDir)}`);
    state = readStateFile(stateDir);
  });

  after(async () => {
    if (stateDir) await trellis(['down', '--state-dir', stateDir]);
    await Promise.all([plain?.close(), secure?.close(), unknown?.close()]);
    rmSync(work, { recursive: true, force: true });
  });

  test('the egress gateway runs as its own process next to the ingress gateway', () => {
    const gateways = state.processes.filter((p) => p.role === 'gateway');
    assert.deepEqual(gateways.map((g) => g.name).sort(), ['egress gateway', 'ingress gateway']);
    const egress = gateways.find((g) => g.name === 'egress gateway')!;
    assert.equal(egress.namespace, 'istio-system');
    assert.ok(egress.ports['gateway:443'] > 0, JSON.stringify(egress.ports));
    assert.equal(livePids([egress.pid]).length, 1);
  });

  test('the workload reaches a ServiceEntry host, and an HTTPS host through the egress gateway; the unknown host is blocked', async () => {
    let last: CurlResult | undefined;
    const ok = await eventually(VisibleWithinMs, async () => {
      last = await curl(state.gatewayUrl!);
      try {
        return (JSON.parse(last.body) as ShopReply).upstream[1]?.status === 200;
      } catch {
        return false;
      }
    });
    assert.ok(ok, `last: ${last?.status} ${last?.body}`);
    // The demo service answers 502 when one of its upstreams failed: here the blocked one.
    assert.equal(last!.status, 502);
    const body = JSON.parse(last!.body) as ShopReply;
    assert.deepEqual(body.upstream.map((u) => [u.status, u.body]), [[200, 'plain /plain\n'], [200, 'secure /tls\n'], [502, '']]);
    const viaGateway = secure.seen.filter((s) => s.path === '/tls');
    assert.ok(viaGateway.length > 0 && viaGateway.every((s) => s.tls && s.sni === 'secure.external.test'), JSON.stringify(viaGateway));
    assert.equal(unknown.seen.length, 0, 'nothing reached the unknown host');
    const egress = state.processes.find((p) => p.name === 'egress gateway')!;
    const stats = await (await fetch(`http://127.0.0.1:${egress.ports.admin}/stats`)).text();
    assert.match(stats, /cluster\.outbound\|443\|\|secure\.external\.test\.upstream_rq_2xx: [1-9]/, 'the egress gateway originated the TLS request');
  });
});
