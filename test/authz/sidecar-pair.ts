/**
 * Two sidecars for one workload (`ratings` in `shop`, port 9080) fed by one `trellis control`:
 * a Trellis proxy and a stock Envoy, each in explicit capture on its own free ports and in front
 * of its own app (which records the requests it receives and answers 200 with them as JSON), so a
 * test can send the same raw request to both and compare. Also a raw HTTP/1.1 client that sends a
 * request byte for byte.
 */
import http from 'node:http';
import net from 'node:net';
import { mkdirSync } from 'node:fs';
import { freePort, startControlProcess, startEnvoy, tempDir, waitFor, type Cleanups, type ControlProcess } from '../support/processes.ts';
import { startProxy } from '../support/mesh.ts';
import { writeConfig } from '../support/mesh-yaml.ts';

export type Side = 'trellis' | 'envoy';

/** What an app received. */
export interface Received {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

export interface SidecarPair {
  readonly cp: ControlProcess;
  readonly configDir: string;
  readonly port: Record<Side, number>;
  readonly received: Record<Side, Received[]>;
  /** The Trellis sidecar's Prometheus port (`/stats/prometheus`). */
  readonly trellisPrometheusPort: number;
  /** What each sidecar process printed (for failure messages). */
  output(side: Side): string;
}

export interface RawRequest {
  readonly target: string;
  readonly method?: string;
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: string;
}

export interface RawResponse { status: number; headers: Record<string, string>; body: string }

/** Sends `r` byte for byte on a fresh connection (Host `ratings.shop` unless given). */
export function sendRaw(port: number, r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const headers = r.headers ?? [];
    const has = (n: string) => headers.some(([k]) => k.toLowerCase() === n);
    const lines = [`${r.method ?? 'GET'} ${r.target} HTTP/1.1`, ...(has('host') ? [] : ['host: ratings.shop']), ...headers.map(([k, v]) => `${k}: ${v}`)];
    if (r.body !== undefined && !has('content-length') && !has('transfer-encoding')) lines.push(`content-length: ${Buffer.byteLength(r.body)}`);
    lines.push('connection: close');
    let data = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m === null) return resolve({ status: 0, headers: {}, body: data });
      const [head, ...rest] = data.split('\r\n\r\n');
      const h: Record<string, string> = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) h[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers: h, body: rest.join('\r\n\r\n') });
    };
    s.setTimeout(10_000, () => s.destroy(new Error(`timeout on ${r.method ?? 'GET'} ${r.target}`)));
    s.on('data', (d) => {
      data += d.toString('latin1');
      // Done once the head and a content-length body are in (a proxy may linger before closing).
      const end = data.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end));
      if (end >= 0 && (r.method === 'HEAD' || (len !== null && data.length - end - 4 >= Number(len[1])))) finish();
    });
    s.on('error', (err) => (done ? undefined : reject(err)));
    s.on('close', finish);
    s.write(`${lines.join('\r\n')}\r\n\r\n${r.body ?? ''}`);
  });
}

async function startApp(cleanups: Cleanups, sink: Received[]): Promise<number> {
  const app = http.createServer((req, res) => {
    sink.push({ url: req.url ?? '', headers: req.headers });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  cleanups.add(() => app.close());
  return (app.address() as net.AddressInfo).port;
}

/** Starts the control plane (with `controlArgs`) on `files` and both sidecars; resolves once both answer `ready` with 200. */
export async function startSidecarPair(cleanups: Cleanups, files: Record<string, string>, ready: RawRequest, controlArgs: readonly string[] = []): Promise<SidecarPair> {
  const dir = tempDir(cleanups);
  const configDir = `${dir}/config`;
  mkdirSync(configDir);
  for (const [name, text] of Object.entries(files)) writeConfig(configDir, name, text);
  const cp = await startControlProcess(cleanups, configDir, ['--log-level', 'warn', ...controlArgs]);
  const port: Record<Side, number> = { trellis: await freePort(), envoy: await freePort() };
  const received: Record<Side, Received[]> = { trellis: [], envoy: [] };
  // Each sidecar's outbound 9080 goes to a free port too, so the two can share the machine.
  const meta = async (side: Side) => ({
    NAMESPACE: 'shop', LABELS: { app: 'ratings' }, SERVICE_ACCOUNT: 'ratings', TRELLIS_INBOUND_ADDRESS: '127.0.0.1',
    TRELLIS_INBOUND_PORTS: { 9080: port[side] }, TRELLIS_APP_PORTS: { 9080: await startApp(cleanups, received[side]) }, TRELLIS_OUTBOUND_PORTS: { 9080: await freePort() },
  });
  const trellis = await startProxy(cp, { namespace: 'shop', workload: 'ratings-trellis', labels: { app: 'ratings' }, metadata: await meta('trellis') });
  cleanups.add(() => trellis.stop());
  const envoy = await startEnvoy(cleanups, { xdsPort: cp.xdsPort, nodeId: 'sidecar~127.0.0.1~ratings-envoy.shop~shop.svc.cluster.local', metadata: await meta('envoy'), dir });
  for (const side of ['trellis', 'envoy'] as const) {
    await waitFor(`${side} sidecar answering on ${port[side]}`, async () => {
      const r = await sendRaw(port[side], ready);
      if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.slice(0, 200)}`);
      return true;
    }, 60_000, 200);
  }
  return { cp, configDir, port, received, trellisPrometheusPort: trellis.ports.prometheus, output: (side) => (side === 'trellis' ? trellis.output() : envoy.output()).slice(-3000) };
}
