/**
 * A test bed with the mesh CA (egress, and stock Envoy sidecars next to ours): "external" hosts
 * that are local servers on loopback (never the internet), a control plane with the mesh CA, and
 * helpers to start sidecars and gateways with their own workload tokens. The external servers record what they saw (TLS or not, SNI, the Host
 * header), so a test can tell that TLS was originated by the mesh and for which name.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueToken } from '../../src/control/ca/tokens.ts';
import { startControlPlane, startProxy, type ControlPlaneProc, type ProxyProc, type ProxySpec } from './mesh.ts';
import type { PemPair } from './test-pki.ts';

/** What an external server saw of one request. */
export interface SeenRequest {
  readonly tls: boolean;
  readonly sni: string | undefined;
  readonly host: string | undefined;
  readonly path: string;
  readonly xff: string | undefined;
}

export interface ExternalServer {
  readonly port: number;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/** A plain HTTP (or, with `tls`, HTTPS) server on 127.0.0.1 answering `<name> <path>`. */
export async function startExternalServer(name: string, tls?: PemPair): Promise<ExternalServer> {
  const seen: SeenRequest[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const sock = req.socket as TLSSocket;
    const sni = tls !== undefined && typeof sock.servername === 'string' ? sock.servername : undefined;
    seen.push({ tls: tls !== undefined, sni, host: req.headers.host, path: req.url ?? '', xff: req.headers['x-forwarded-for'] as string | undefined });
    req.resume();
    res.setHeader('content-type', 'text/plain');
    res.end(`${name} ${req.url}\n`);
  };
  const server = tls !== undefined ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface EgressBed {
  readonly dir: string;
  readonly cp: ControlPlaneProc;
  /** Starts a proxy with a workload token for `serviceAccount` (the mesh CA gives it its certificate). */
  proxy(spec: ProxySpec & { serviceAccount?: string }): Promise<ProxyProc>;
  /** A token file for a workload's identity, as `trellis up` issues one per replica. */
  tokenFile(workload: string, namespace: string, serviceAccount: string): string;
}

/** A control plane with a self-signed mesh CA, seeded with `files`. */
export async function startEgressBed(files: Record<string, string>, extraArgs: string[] = []): Promise<EgressBed> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-egress-'));
  const tokenDir = join(dir, 'tokens');
  const cp = await startControlPlane(files, ['--ca-dir', join(dir, 'ca'), '--ca-token-dir', tokenDir, ...extraArgs]);
  const tokenFile = (workload: string, namespace: string, serviceAccount: string) => {
    const file = join(dir, `${workload}.token`);
    writeFileSync(file, issueToken(tokenDir, { namespace, serviceAccount }), { mode: 0o600 });
    return file;
  };
  return {
    dir,
    cp,
    tokenFile,
    async proxy(spec) {
      const sa = spec.serviceAccount ?? 'default';
      const token = tokenFile(spec.workload, spec.namespace ?? 'default', sa);
      return startProxy(cp, { ...spec, extraArgs: ['--service-account', sa, '--ca-token-file', token, ...(spec.extraArgs ?? [])] });
    },
  };
}

/** One HTTP/1.1 request through an HTTP proxy (absolute-form URL), as an app with HTTP_PROXY sends it. */
export function viaHttpProxy(proxyPort: number, url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host: u.host, connection: 'close' }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${url} via proxy ${proxyPort}`)));
    req.end();
  });
}

/** A MESH_EXTERNAL ServiceEntry resolved to `address` (STATIC), endpoint ports by port name. */
export function serviceEntryYaml(o: { name: string; host: string; ports: readonly { number: number; name: string; protocol: string; targetPort?: number }[]; address: string; endpointPorts?: Record<string, number> }): string {
  const ports = o.ports.map((p) => `  - {number: ${p.number}, name: ${p.name}, protocol: ${p.protocol}${p.targetPort !== undefined ? `, targetPort: ${p.targetPort}` : ''}}`).join('\n');
  const eps = o.endpointPorts !== undefined ? `, ports: {${Object.entries(o.endpointPorts).map(([k, v]) => `${k}: ${v}`).join(', ')}}` : '';
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${o.name}, namespace: default}
spec:
  hosts: [${o.host}]
  location: MESH_EXTERNAL
  ports:
${ports}
  resolution: STATIC
  endpoints: [{address: ${o.address}${eps}}]
`;
}

/**
 * Istio's "egress gateway with TLS origination" routing for `host`: a Gateway on the egress gateway
 * (port 443, ISTIO_MUTUAL), a DestinationRule giving the hop to it ISTIO_MUTUAL with SNI `host`,
 * and a VirtualService sending the host's port 80 from the mesh to the gateway, and from the
 * gateway to the host's port 443 (where a TLS origination rule applies).
 */
export function egressGatewayRoutingYaml(host: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [${host}]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-external, namespace: default}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: external
    trafficPolicy:
      portLevelSettings:
      - port: {number: 443}
        tls: {mode: ISTIO_MUTUAL, sni: ${host}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: through-egress-gateway, namespace: default}
spec:
  hosts: [${host}]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: external, port: {number: 443}}}]
  - match: [{gateways: [istio-egressgateway], port: 443}]
    route: [{destination: {host: ${host}, port: {number: 443}}}]
`;
}
