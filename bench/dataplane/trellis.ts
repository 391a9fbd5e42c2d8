/**
 * Trellis paths: one `trellis control` over a mesh config generated here, and `trellis proxy`
 * processes driven by it over xDS, in explicit capture (node metadata places listeners on free
 * loopback ports, see src/control/translate/listeners-sidecar.ts and listeners-gateway.ts):
 *   - 1 hop: a router (gateway) with an Istio Gateway on port 8080 (TRELLIS_GATEWAY_PORTS remaps
 *     it) and a VirtualService sending everything to the `bench-upstream` Service;
 *   - 2 hops: client sidecar outbound listener (TRELLIS_OUTBOUND_PORTS) -> Service `srv-plain`
 *     whose EndpointSlice points at the server sidecar's inbound listener (TRELLIS_INBOUND_PORTS)
 *     -> the upstream (TRELLIS_APP_PORTS);
 *   - 2 hops mTLS (`TrellisMtlsMode` 'istio', the default): the mesh's own mTLS. The control
 *     plane runs the mesh CA (`--ca-dir`, `--ca-token-dir`), each sidecar of the path gets its
 *     SPIFFE certificate by CSR with its own workload token; the client sidecar's DestinationRule
 *     says ISTIO_MUTUAL and a PeerAuthentication makes the server sidecar's inbound port STRICT.
 *     'files' keeps the earlier stand-in: a DestinationRule `tls: MUTUAL` with the bench's
 *     certificate files towards a Trellis router with an Istio Gateway server `tls: MUTUAL`.
 *   - 1 hop with security filters (`trellis-1hop-authz`): the same router, plus a
 *     RequestAuthentication (ES256, inline keys) and AuthorizationPolicies (a DENY on paths, an
 *     ALLOW on the token's principal, method and a claim); every request carries a valid JWT, so
 *     the difference to `trellis-1hop` is what jwt_authn + RBAC cost per request.
 *
 * Telemetry variants of the 2-hop path (labels `bench-telemetry=off|full` on both proxies, a
 * workload Telemetry per variant): `-notel` disables every Istio metric (no stats filter), `-tel`
 * adds 100% tracing to an OTLP/HTTP sink in the bench process and JSON access logs to a file, on
 * top of the default metrics (the plain `trellis-2hop`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SetupContext } from './context.ts';
import type { PathDef } from './paths.ts';
import { BaselineSuffix, freePort, parsePathId, waitFor200 } from './paths.ts';
import type { Proc } from './procs.ts';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { logTail, startProc } from './procs.ts';
import { issueToken } from '../../src/control/ca/tokens.ts';
import { heapProbe } from './heap.ts';

/** The one-line switch: 'istio' = the mesh's own ISTIO_MUTUAL (CA, SDS, PeerAuthentication), 'files' = bench certificates. */
export const TrellisMtlsMode: 'files' | 'istio' = 'istio';

const Ns = 'bench';

function service(name: string, selector: string | undefined): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${Ns}}
spec:
${selector ? `  selector: {app: ${selector}}\n` : ''}  ports:
  - {name: http, port: 8080, protocol: TCP}
`;
}

function slice(name: string, port: number): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  namespace: ${Ns}
  labels: {kubernetes.io/service-name: ${name}}
addressType: IPv4
ports:
- {name: http, port: ${port}, protocol: TCP}
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
`;
}

/** A 2-hop path's Service (`srv-<path id>`) and the port its server-side proxy listens on. */
interface TwoHop { id: string; tls: boolean; serverPort: number }

function svcName(id: string): string {
  return `srv-${id}`;
}

/** The security config of `-authz` paths (routers labelled `authz: on`) and a token it accepts. */
async function securityConfig(): Promise<{ yaml: string; token: string }> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' }] });
  const token = await new SignJWT({ groups: ['bench'] }).setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setIssuer('https://bench.trellis.dev').setSubject('loadgen').setAudience('bench').setIssuedAt().setExpirationTime('24h').sign(privateKey);
  const yaml = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: bench-jwt, namespace: ${Ns}}
spec:
  selector: {matchLabels: {authz: "on"}}
  jwtRules:
  - issuer: https://bench.trellis.dev
    audiences: [bench]
    jwks: '${jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bench-deny, namespace: ${Ns}}
spec:
  selector: {matchLabels: {authz: "on"}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bench-allow, namespace: ${Ns}}
spec:
  selector: {matchLabels: {authz: "on"}}
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ["https://bench.trellis.dev/*"]}}]
    to: [{operation: {methods: [GET, HEAD]}}]
    when: [{key: "request.auth.claims[groups]", values: [bench]}]
`;
  return { yaml, token };
}

function meshConfig(upstream: number, twoHops: readonly TwoHop[], ctx: SetupContext): string {
  const c = ctx.certs;
  const mtlsGateways = TrellisMtlsMode === 'files' ? twoHops.filter((t) => t.tls).map((t) => `mtls-${t.id}`) : [];
  const docs = [
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${Ns}}\n`,
    service('bench-upstream', undefined), slice('bench-upstream', upstream),
    `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-gw, namespace: ${Ns}}
spec:
  selector: {istio: bench-gw}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
`,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench-upstream, namespace: ${Ns}}
spec:
  hosts: ["*"]
  gateways: [${['bench-gw', ...mtlsGateways].join(', ')}]
  http:
  - route:
    - destination: {host: bench-upstream.${Ns}.svc.cluster.local, port: {number: 8080}}
`,
  ];
  for (const t of twoHops) {
    const name = svcName(t.id);
    const serverIsSidecar = !t.tls || TrellisMtlsMode === 'istio';
    docs.push(service(name, serverIsSidecar ? name : undefined), slice(name, t.serverPort));
    if (!t.tls) continue;
    if (TrellisMtlsMode === 'files' && c) {
      docs.push(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mtls-${t.id}, namespace: ${Ns}}
spec:
  selector: {istio: mtls-${t.id}}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, serverCertificate: ${c.serverCert}, privateKey: ${c.serverKey}, caCertificates: ${c.ca}}
`, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${Ns}}
spec:
  host: ${name}.${Ns}.svc.cluster.local
  trafficPolicy:
    tls: {mode: MUTUAL, clientCertificate: ${c.clientCert}, privateKey: ${c.clientKey}, caCertificates: ${c.ca}, sni: ${c.serverName}, subjectAltNames: [${c.serverName}]}
`);
    } else {
      docs.push(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${Ns}}
spec:
  host: ${name}.${Ns}.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
`, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${Ns}}
spec:
  selector: {matchLabels: {app: ${name}}}
  mtls: {mode: STRICT}
`);
    }
  }
  docs.push(`apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: telemetry-off, namespace: ${Ns}}
spec:
  selector: {matchLabels: {bench-telemetry: "off"}}
  metrics: [{overrides: [{disabled: true}]}]
`, `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: telemetry-full, namespace: ${Ns}}
spec:
  selector: {matchLabels: {bench-telemetry: "full"}}
  tracing: [{providers: [{name: bench-otel}], randomSamplingPercentage: 100}]
  accessLogging: [{providers: [{name: bench-log}]}]
`);
  return docs.join('---\n');
}

/** MeshConfig for the telemetry variants: an OTLP/HTTP tracer and a JSON file access log. */
function meshSettings(sinkPort: number, ctx: SetupContext): string {
  return `accessLogEncoding: JSON
extensionProviders:
- {name: bench-otel, opentelemetry: {service: 127.0.0.1, port: ${sinkPort}, http: {path: /v1/traces}}}
- {name: bench-log, envoyFileAccessLog: {path: ${join(ctx.workDir, 'trellis-access.log')}}}
`;
}

/** Where the `-tel` path's proxies send spans: accepts and discards OTLP/HTTP requests. */
async function startSpanSink(): Promise<number> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.unref();
  return (server.address() as AddressInfo).port;
}

async function waitFile(file: string, ms: number, alive: () => boolean): Promise<Record<string, unknown> | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end && alive()) {
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** Why `--concurrency 2` cannot be measured yet, or undefined when the proxy implements it. */
export function trellisConcurrencyGap(ctx: SetupContext): string | undefined {
  const r = spawnSync(join(ctx.root, 'node_modules/.bin/node'), [join(ctx.root, 'bin/trellis.js'), 'proxy', '--help'], { encoding: 'utf8', timeout: 20000 });
  const help = `${r.stdout}${r.stderr}`;
  if (!help.includes('--concurrency')) return 'trellis proxy has no --concurrency flag';
  if (/currently 1 process/.test(help)) return 'trellis proxy --concurrency is accepted but runs one process (proxy --help: "currently 1 process")';
  return undefined;
}

/** Starts the control plane and Trellis proxies for the requested trellis-* paths. */
export async function setupTrellis(ids: readonly string[], ctx: SetupContext): Promise<PathDef[]> {
  const node = join(ctx.root, 'node_modules/.bin/node');
  const cli = join(ctx.root, 'bin/trellis.js');
  const defs = ids.map((id) => {
    const p = parsePathId(id);
    const def: PathDef = { id, family: 'trellis', hops: p.hops, tls: p.tls, concurrency: p.concurrency, telemetry: p.telemetry, url: '', host: '', pgids: [], proxies: p.hops };
    return def;
  });
  if (defs.length === 0) return defs;
  const fail = (why: string) => { for (const d of defs) d.unavailable ??= why; return defs; };
  if (!existsSync(cli)) return fail('bin/trellis.js missing');
  if (defs.some((d) => d.tls) && ctx.certs === undefined) for (const d of defs) if (d.tls) d.unavailable = 'openssl not installed (no certificates)';
  if (defs.some((d) => d.concurrency > 1)) {
    const gap = trellisConcurrencyGap(ctx);
    if (gap) for (const d of defs) if (d.concurrency > 1) d.unavailable = gap;
  }

  const twoHops: TwoHop[] = [];
  // Names (Services, workloads, files) cannot carry the '@' of a baseline path id.
  const tagOf = (id: string) => id.replace(BaselineSuffix, '-baseline');
  for (const d of defs) if (d.hops === 2 && !d.unavailable) twoHops.push({ id: tagOf(d.id), tls: d.tls, serverPort: await freePort() });
  const dir = join(ctx.workDir, 'trellis-mesh');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'mesh.yaml'), meshConfig(ctx.upstreamPort, twoHops, ctx));
  const security = defs.some((d) => parsePathId(d.id).authz) ? await securityConfig() : undefined;
  if (security !== undefined) writeFileSync(join(dir, 'security.yaml'), security.yaml);
  const meshFile = join(ctx.workDir, 'trellis-meshconfig.yaml');
  writeFileSync(meshFile, meshSettings(defs.some((d) => d.telemetry === 'full') ? await startSpanSink() : 9, ctx));
  const controlReady = join(ctx.workDir, 'trellis-control.ready');
  // The mesh CA, for ISTIO_MUTUAL paths: a fresh self-signed root, and one token per sidecar.
  const tokenDir = join(ctx.workDir, 'trellis-tokens');
  const meshCa = TrellisMtlsMode === 'istio' && twoHops.some((t) => t.tls) ? ['--ca-dir', join(ctx.workDir, 'trellis-ca'), '--ca-token-dir', tokenDir] : [];
  const control = startProc('trellis-control', node, [cli, 'control', '--config', dir, '--mesh-config', meshFile, '--xds-port', '0', '--debug-port', '0', '--ready-file', controlReady, '--log-level', 'warn', ...meshCa], { logDir: ctx.logDir, cwd: ctx.root });
  const cr = await waitFile(controlReady, 30000, () => control.exitCode === undefined);
  if (cr === undefined) return fail(`trellis control did not start: ${logTail(control, 400).replace(/\s+/g, ' ')}`);
  const xds = `127.0.0.1:${String(cr.xds)}`;

  const proxy = async (name: string, kind: 'sidecar' | 'router', labels: string, metadata: Record<string, unknown>, concurrency: number, identity = false, proxyCli = cli): Promise<Proc> => {
    const ready = join(ctx.workDir, `${name}.ready`);
    const ident: string[] = [];
    if (identity && meshCa.length > 0) {
      const token = join(ctx.workDir, `${name}.token`);
      // Service account `default`: the endpoints come from an EndpointSlice, whose pods (absent in
      // local mode) would name it, so the client verifies the Kubernetes default identity.
      writeFileSync(token, issueToken(tokenDir, { namespace: Ns, serviceAccount: 'default' }), { mode: 0o600 });
      ident.push('--service-account', 'default', '--ca-token-file', token);
    }
    // One directory per proxy: its worker processes inherit the flags and write their own files there.
    const probe = heapProbe(ctx.root, join(ctx.workDir, 'heap', name));
    // TRELLIS_BENCH_NODE_ARGS: extra node flags for this checkout's proxies (not --baseline's), to try a V8 flag side by side.
    const extraArgs = proxyCli === cli ? (process.env.TRELLIS_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean) : [];
    const nodeArgs = [...extraArgs, ...probe.nodeArgs, ...(ctx.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(ctx.profileDir, name), '--import', pathToFileURL(join(ctx.root, 'bench/naive/alloc-profile.mjs')).href] : [])];
    const env = ctx.profileDir ? { ...probe.env, TRELLIS_BENCH_ALLOC_PROFILE_DIR: join(ctx.profileDir, name) } : probe.env;
    const p = startProc(name, node, [...nodeArgs, proxyCli, 'proxy', '--xds', xds, '--kind', kind, '--node-id', `${kind}~127.0.0.1~${name}.${Ns}~${Ns}.svc.cluster.local`,
      '--namespace', Ns, '--workload', name, '--labels', labels, '--metadata', JSON.stringify(metadata), '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0',
      '--concurrency', String(concurrency), '--drain-timeout', '1s', '--ready-file', ready, '--log-level', 'warn', ...ident], { logDir: ctx.logDir, cwd: ctx.root, env });
    const r = await waitFile(ready, 30000, () => p.exitCode === undefined);
    if (r === undefined) throw new Error(`trellis proxy ${name} did not start: ${logTail(p, 400).replace(/\s+/g, ' ')}`);
    return p;
  };

  // Paths start in parallel: a Trellis proxy takes seconds to start on a loaded 2-core machine.
  await Promise.all(defs.map(async (def) => {
    if (def.unavailable) return;
    const c = def.concurrency;
    const tag = tagOf(def.id);
    const pcli = def.id.endsWith(BaselineSuffix) && ctx.baselineRoot !== undefined ? join(ctx.baselineRoot, 'bin/trellis.js') : cli;
    const front = await freePort();
    try {
      const procs: Proc[] = [];
      if (def.hops === 1) {
        const authz = parsePathId(def.id).authz;
        procs.push(await proxy(tag, 'router', authz ? 'istio=bench-gw,authz=on' : 'istio=bench-gw', { TRELLIS_GATEWAY_PORTS: { 8080: front } }, c, false, pcli));
        def.host = 'bench.local';
        if (authz && security !== undefined) def.headers = { authorization: `Bearer ${security.token}` };
        def.h2Url = `http://127.0.0.1:${front}/`;
      } else {
        const t = twoHops.find((x) => x.id === tag)!;
        const name = svcName(tag);
        const tel = def.telemetry === 'off' || def.telemetry === 'full' ? `,bench-telemetry=${def.telemetry}` : '';
        const sidecarServer = { TRELLIS_INBOUND_PORTS: { 8080: t.serverPort }, TRELLIS_APP_PORTS: { 8080: ctx.upstreamPort }, TRELLIS_OUTBOUND_PORTS: { 8080: await freePort() } };
        procs.push(def.tls && TrellisMtlsMode === 'files'
          ? await proxy(`${tag}-server`, 'router', `istio=mtls-${tag}`, { TRELLIS_GATEWAY_PORTS: { 8443: t.serverPort } }, c, false, pcli)
          : await proxy(`${tag}-server`, 'sidecar', `app=${name}${tel}`, sidecarServer, c, def.tls, pcli));
        procs.push(await proxy(`${tag}-client`, 'sidecar', `app=${tag}-client${tel}`, { TRELLIS_OUTBOUND_PORTS: { 8080: front } }, c, def.tls, pcli));
        def.host = `${name}.${Ns}.svc.cluster.local`;
      }
      def.pgids = procs.map((x) => x.pid);
      def.heapDirs = procs.map((x) => join(ctx.workDir, 'heap', x.name));
      def.url = `http://127.0.0.1:${front}/`;
      const ok = await waitFor200(def.url, def.host, 20000, () => procs.every((x) => x.exitCode === undefined), def.headers);
      if (!ok.ok) def.unavailable = `no 200 through the path (last status ${ok.last || 'connection refused'}): ${procs.map((x) => logTail(x, 250)).join(' | ').replace(/\s+/g, ' ')}`;
    } catch (err) {
      def.unavailable = (err as Error).message;
    }
  }));
  return defs;
}
