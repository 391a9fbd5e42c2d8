/**
 * A two-sidecar mesh with the mesh CA for the mTLS end-to-end tests: `trellis control` with
 * `--ca-dir` (self-signed root in a temp dir) or a plug-in CA, a `backend` Service whose workload
 * runs a Trellis sidecar (inbound) in front of a tiny HTTP app, and a `frontend` sidecar a client
 * calls on its outbound port. Each sidecar gets its own workload token, as `trellis up` issues
 * them. Also: client certificates straight from the CA's files, for curl and openssl.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueToken } from '../../src/control/ca/tokens.ts';
import { issueCertificate } from '../../src/pki/certificate.ts';
import { generateKey } from '../../src/pki/keys.ts';
import { freePort, startControlPlane, startProxy, type ControlPlaneProc, type ProxyProc } from './mesh.ts';
import { serviceWithWorkloads } from './mesh-yaml.ts';
import { startTcpEcho } from './tcp-echo.ts';

export interface MtlsMesh {
  readonly dir: string;
  readonly caDir: string;
  readonly cp: ControlPlaneProc;
  readonly backend: ProxyProc;
  readonly frontend: ProxyProc;
  /** The backend sidecar's inbound port (what peers dial). */
  readonly inboundPort: number;
  /** The frontend sidecar's outbound port for backend:8080. */
  readonly outboundPort: number;
  /** With `tcpEcho`: the frontend sidecar's outbound port for backend:9000 (TCP, a raw echo app). */
  readonly tcpOutboundPort: number;
  /** With `tcpEcho`: the backend sidecar's inbound port for 9000. */
  readonly tcpInboundPort: number;
  /** Requests the backend app saw. */
  readonly appHits: () => number;
  /** Headers of the last request the backend app saw. */
  readonly appLastHeaders: () => Record<string, string | string[] | undefined>;
  close(): Promise<void>;
}

export interface MtlsMeshOptions {
  /** A plug-in CA directory instead of a generated self-signed root. */
  readonly pluginCaDir?: string;
  /** Requested workload certificate lifetime (e.g. '60s'). */
  readonly certTtl?: string;
  /** Extra config files. */
  readonly files?: Record<string, string>;
  readonly concurrency?: number;
  /** Also a TCP port on backend (`tcp-echo` 9000) served by a raw socket echo app. */
  readonly tcpEcho?: boolean;
}

/** Starts the mesh; everything binds free loopback ports. */
export async function startMtlsMesh(opts: MtlsMeshOptions = {}): Promise<MtlsMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-mtls-'));
  const caDir = opts.pluginCaDir ?? join(dir, 'ca');
  const tokenDir = join(dir, 'tokens');
  let hits = 0;
  let lastHeaders: Record<string, string | string[] | undefined> = {};
  const app = http.createServer((req, res) => {
    hits++;
    lastHeaders = req.headers;
    req.resume();
    res.end(`backend ok ${req.url}\n`);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  // A start that fails half-way (a proxy not ready in time on a loaded machine) stops what it
  // started: a server or process left behind would keep the test file from ever exiting.
  const started: (() => Promise<void>)[] = [async () => {
    app.closeAllConnections();
    await new Promise<void>((r) => app.close(() => r()));
  }];
  try {
    const [inboundPort, outboundPort] = [await freePort(), await freePort()];
    const tcp = opts.tcpEcho === true;
    const [tcpInboundPort, tcpOutboundPort] = tcp ? [await freePort(), await freePort()] : [0, 0];
    const echo = tcp ? await startTcpEcho() : undefined;
    if (echo !== undefined) started.push(() => new Promise<void>((r) => echo.server.close(() => r())));
    const echoPort = echo?.port ?? 0;
    const cp = await startControlPlane({
      'backend.yaml': serviceWithWorkloads({
        name: 'backend',
        ports: [{ name: 'http', port: 8080 }, ...(tcp ? [{ name: 'tcp-echo', port: 9000 }] : [])],
        workloads: [{ name: 'backend-1', labels: { 'security.istio.io/tlsMode': 'istio' }, ports: { http: inboundPort, ...(tcp ? { 'tcp-echo': tcpInboundPort } : {}) } }],
      })
        .replace('  ports:\n    http:', '  serviceAccount: backend\n  ports:\n    http:'),
      ...(opts.files ?? {}),
    }, [opts.pluginCaDir !== undefined ? '--plugin-ca-dir' : '--ca-dir', caDir, '--ca-token-dir', tokenDir]);
    started.push(() => cp.stop());
    const token = (sa: string) => {
      const f = join(dir, `${sa}.token`);
      writeFileSync(f, issueToken(tokenDir, { namespace: 'default', serviceAccount: sa }), { mode: 0o600 });
      return f;
    };
    const common = (sa: string) => ['--service-account', sa, '--ca-token-file', token(sa), ...(opts.certTtl ? ['--cert-ttl', opts.certTtl] : []), '--concurrency', String(opts.concurrency ?? 1)];
    const backend = await startProxy(cp, {
      workload: 'backend-1', labels: { app: 'backend' },
      metadata: {
        TRELLIS_INBOUND_ADDRESS: '127.0.0.1',
        TRELLIS_INBOUND_PORTS: { 8080: inboundPort, ...(tcp ? { 9000: tcpInboundPort } : {}) },
        TRELLIS_APP_PORTS: { 8080: appPort, ...(tcp ? { 9000: echoPort } : {}) },
        TRELLIS_OUTBOUND_PORTS: { 8080: await freePort() },
      },
      extraArgs: common('backend'),
    });
    started.push(() => backend.stop());
    const frontend = await startProxy(cp, {
      workload: 'frontend-1', labels: { app: 'frontend' },
      metadata: { TRELLIS_OUTBOUND_PORTS: { 8080: outboundPort, ...(tcp ? { 9000: tcpOutboundPort } : {}) } },
      extraArgs: common('frontend'),
    });
    return {
      dir, caDir, cp, backend, frontend, inboundPort, outboundPort, tcpInboundPort, tcpOutboundPort,
      appHits: () => hits,
      appLastHeaders: () => lastHeaders,
      async close() {
        await Promise.all([frontend.stop(), backend.stop()]);
        await cp.stop();
        app.closeAllConnections();
        await new Promise<void>((r) => app.close(() => r()));
        if (echo !== undefined) await new Promise<void>((r) => echo.server.close(() => r()));
      },
    };
  } catch (err) {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    throw err;
  }
}

/** A client certificate for `spiffe` signed by the CA in `caDir` (or, with `selfSigned`, by nobody the mesh trusts). */
export async function clientCertificate(caDir: string, spiffe: string, out: string, selfSigned = false): Promise<{ cert: string; key: string }> {
  const k = await generateKey('ECDSA_P256');
  const now = Date.now();
  const issuer = selfSigned
    ? { certificate: undefined, privateKey: k.privateKey }
    : { certificate: new X509Certificate(readFileSync(join(caDir, 'ca-cert.pem'))), privateKey: createPrivateKey(readFileSync(join(caDir, 'ca-key.pem'))) };
  const pem = issueCertificate({ uriSans: [spiffe], isCa: false, notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000), publicKey: k.publicKey }, issuer);
  const cert = join(out, `client-${Math.random().toString(36).slice(2)}.pem`);
  const key = `${cert}.key`;
  writeFileSync(cert, pem);
  writeFileSync(key, k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return { cert, key };
}
