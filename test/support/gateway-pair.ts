/**
 * Two ingress gateways configured by the same Istio YAML through one `trellis control`: a
 * `trellis proxy` and (when `envoy` is on PATH and asked for) a stock Envoy, each with its
 * Gateway port 80 on its own free loopback port, both in front of one recording backend that
 * keeps every request as it arrived (method, target, headers) and answers 200 with JSON. Tests
 * send raw bytes to both and compare what a client sees (statuses, connection closed or kept)
 * and what reached the backend (which path, how many times).
 */
import http from 'node:http';
import net from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cleanups, freePort, nodeBin, repoRoot, spawnTracked, startControlProcess, startEnvoy, tempDir, waitFor, type ControlProcess, type EnvoyProcess, type Spawned } from './processes.ts';
import { writeConfig } from './mesh-yaml.ts';
import { serviceYaml } from './features.ts';

/** One request as the backend received it. */
export interface BackendHit {
  readonly method: string;
  readonly target: string;
  readonly headers: http.IncomingHttpHeaders;
  /** When it arrived (Date.now()). */
  readonly at: number;
}

/** A backend that records every request and answers `200 {"path": ..., "host": ...}`. */
export interface RecordingBackend {
  readonly port: number;
  readonly hits: BackendHit[];
  /** Requests received whose target contains `marker`. */
  count(marker: string): number;
  /** Delay before answering a request whose target contains `slow` (ms). */
  slowMs: number;
  close(): Promise<void>;
}

/** Starts the recording backend on 127.0.0.1:0. */
export async function startRecordingBackend(): Promise<RecordingBackend> {
  const hits: BackendHit[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer({ insecureHTTPParser: true }, (req, res) => {
    hits.push({ method: req.method ?? '', target: req.url ?? '', headers: req.headers, at: Date.now() });
    if (hits.length > 100_000) hits.splice(0, 50_000);
    const body = JSON.stringify({ path: req.url, host: req.headers.host ?? '', method: req.method });
    req.resume();
    const answer = () => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    req.on('end', () => ((req.url ?? '').includes('slow') && b.slowMs > 0 ? setTimeout(answer, b.slowMs) : answer()));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const b: RecordingBackend = {
    port: (server.address() as net.AddressInfo).port,
    hits,
    slowMs: 0,
    count: (marker) => hits.reduce((n, h) => n + (h.target.includes(marker) ? 1 : 0), 0),
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
  return b;
}

/** The Gateway (port 80, every host) and the backend Service; routes come from the caller's VirtualService. */
export function gatewayYaml(backendPort: number): string {
  return `${serviceYaml('backend', [backendPort])}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`;
}

/** A VirtualService bound to the gateway; `http` is its YAML `http:` list, indented by two spaces. */
export function edgeVirtualService(http: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
${http}`;
}

export interface GatewayPair {
  /** The control plane serving now (replaced by `restartControl`). */
  readonly control: ControlProcess;
  readonly configDir: string;
  readonly backend: RecordingBackend;
  readonly trellis: Spawned & { readonly port: number; readonly adminPort: number };
  /** Undefined unless asked for and `envoy` is on PATH. */
  readonly envoy: (EnvoyProcess & { readonly port: number }) | undefined;
  /** Writes a config file into the watched directory (atomically). */
  write(name: string, yaml: string): void;
  /** Replaces the control plane (same xDS port) with one reading this MeshConfig; the proxies reconnect. */
  restartControl(meshConfig: string): Promise<void>;
}

export interface GatewayPairOptions {
  /** Config files besides the Gateway and backend Service (e.g. the VirtualService). */
  files: Record<string, string>;
  /** Start a stock Envoy too. */
  envoy?: boolean;
  /** Extra `trellis proxy` flags (e.g. ['--concurrency', '2']). */
  trellisArgs?: string[];
  /** `trellis proxy --drain-timeout` (default 1s). */
  drainTimeout?: string;
  /** MeshConfig YAML for `trellis control --mesh-config`. */
  meshConfig?: string;
  /** Envoy's --log-level (default warn; 'debug' shows each local reply's details). */
  envoyLogLevel?: string;
  /** GET this path on both gateways until it answers 200 before returning (default '/'). */
  readyPath?: string;
}

/** Starts backend, control plane, the trellis gateway and optionally Envoy; all stopped by `cleanups`. */
export async function startGatewayPair(cleanups: Cleanups, o: GatewayPairOptions): Promise<GatewayPair> {
  const backend = await startRecordingBackend();
  cleanups.add(() => backend.close());
  const configDir = tempDir(cleanups, 'trellis-gwpair-');
  writeConfig(configDir, 'gateway.yaml', gatewayYaml(backend.port));
  for (const [name, text] of Object.entries(o.files)) writeConfig(configDir, name, text);
  const work = tempDir(cleanups, 'trellis-gwpair-run-');
  // A fixed xDS port, so a restarted control plane is found by the proxies again.
  const xdsPort = await freePort();
  let meshFiles = 0;
  const startControl = (meshConfig: string | undefined) => {
    const args = ['--log-level', 'warn', '--xds-port', String(xdsPort)];
    if (meshConfig !== undefined) {
      const file = join(work, `mesh-${meshFiles++}.yaml`);
      writeFileSync(file, meshConfig);
      args.push('--mesh-config', file);
    }
    return startControlProcess(cleanups, configDir, args);
  };
  let control = await startControl(o.meshConfig);

  const trellisPort = await freePort();
  const ready = join(work, 'trellis.ready');
  const nodeId = 'router~127.0.0.1~gw-trellis.default~default.svc.cluster.local';
  const proc = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin', 'trellis.js'), 'proxy', '--xds', `127.0.0.1:${control.xdsPort}`, '--kind', 'router',
    '--node-id', nodeId, '--namespace', 'default', '--workload', 'gw-trellis', '--labels', 'istio=ingressgateway',
    '--metadata', JSON.stringify({ TRELLIS_GATEWAY_PORTS: { '80': trellisPort } }),
    '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0', '--ready-file', ready, '--log-level', 'warn',
    '--drain-timeout', o.drainTimeout ?? '1s', ...(o.trellisArgs ?? ['--concurrency', '1'])], { cwd: repoRoot });
  const ports = await waitFor('trellis proxy ready file', async () => {
    if (proc.child.exitCode !== null) throw new Error(`trellis proxy exited:\n${proc.output()}`);
    return existsSync(ready) && readFileSync(ready, 'utf8').length > 0 ? (JSON.parse(readFileSync(ready, 'utf8')) as { admin: number }) : undefined;
  }, 60_000);
  const trellis = Object.assign(proc, { port: trellisPort, adminPort: ports.admin });

  let envoy: GatewayPair['envoy'];
  if (o.envoy === true) {
    const envoyPort = await freePort();
    const e = await startEnvoy(cleanups, {
      xdsPort: control.xdsPort,
      nodeId: 'router~127.0.0.1~gw-envoy.default~default.svc.cluster.local',
      metadata: { NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' }, TRELLIS_GATEWAY_PORTS: { '80': envoyPort } },
      dir: work,
      logLevel: o.envoyLogLevel,
    });
    envoy = Object.assign(e, { port: envoyPort });
  }
  const readyPath = o.readyPath ?? '/';
  for (const port of [trellisPort, ...(envoy ? [envoy.port] : [])]) {
    await waitFor(`gateway on ${port} serving ${readyPath}`, async () => (await exchange(port, `GET ${readyPath} HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n`, 2000)).statuses[0] === 200, 60_000, 100);
  }
  return {
    get control() {
      return control;
    },
    configDir, backend, trellis, envoy,
    write: (name, text) => writeConfig(configDir, name, text),
    async restartControl(meshConfig) {
      await control.stop();
      control = await startControl(meshConfig);
    },
  };
}

/** What a client saw on one raw connection. */
export interface Exchange {
  /** Everything received, latin1. */
  readonly text: string;
  /** Status codes of the HTTP/1.x responses, in order. */
  readonly statuses: number[];
  /** The server closed the connection, or its last response said `connection: close`. */
  readonly closed: boolean;
}

/**
 * Sends `data` on a fresh connection and collects the answer: until `responses` complete HTTP/1.x
 * responses arrived (then a short settle for anything more), the server closes, or `waitMs` passes.
 */
export function exchange(port: number, data: string | Buffer | ((s: net.Socket) => void), waitMs = 2000, responses = 1): Promise<Exchange> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    let settle: NodeJS.Timeout | undefined;
    const finish = (socketClosed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(settle);
      s.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const parsed = parseResponses(text);
      const last = parsed.at(-1);
      resolve({ text, statuses: parsed.map((r) => r.status), closed: socketClosed || (last?.close ?? false) });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on('data', (d) => {
      chunks.push(d);
      if (settle === undefined && parseResponses(Buffer.concat(chunks).toString('latin1')).filter((r) => r.complete).length >= responses) {
        settle = setTimeout(() => finish(false), 60);
      }
    });
    s.on('error', () => {});
    s.on('close', () => finish(true));
    s.on('connect', () => {
      if (typeof data === 'function') data(s);
      else s.write(data);
    });
  });
}

/** HTTP/1.x responses in `text` (content-length bodies; anything else counts complete at its head). */
function parseResponses(text: string): { status: number; close: boolean; complete: boolean }[] {
  const out: { status: number; close: boolean; complete: boolean }[] = [];
  let at = 0;
  while (at < text.length) {
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(text.slice(at, at + 16));
    if (!m) break;
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) {
      out.push({ status: Number(m[1]), close: false, complete: false });
      break;
    }
    const head = text.slice(at, headEnd).toLowerCase();
    const len = Number(/\r\ncontent-length: *(\d+)/.exec(head)?.[1] ?? 0);
    const end = headEnd + 4 + len;
    out.push({ status: Number(m[1]), close: /\r\nconnection: *close/.test(head), complete: end <= text.length });
    at = end;
  }
  return out;
}
