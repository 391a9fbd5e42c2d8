/**
 * Issue 18 finding 5: removing a listener (its Gateway file emptied) under load must not cut its
 * clients. fortio at 500 requests/s on keep-alive connections keeps getting 200s after the
 * Gateway is removed: the listener stops accepting but serves its connections for the first half
 * of the drain time (`--drain-timeout`); then responses carry `connection: close`, HTTP/2
 * sessions get GOAWAY, an in-flight request still finishes, and at the drain time what is left
 * is closed. Stock Envoy drains a removed listener over its drain time too (gradually).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { Cleanups } from './support/processes.ts';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';
import { edgeVirtualService, gatewayYaml, startGatewayPair } from './support/gateway-pair.ts';
import { serviceYaml } from './support/features.ts';

const run = promisify(execFile);
const cleanups = new Cleanups();
after(() => cleanups.run());

/** One keep-alive HTTP/1.1 connection on which requests are sent one at a time. */
function keepAlive(port: number) {
  const s = net.connect(port, '127.0.0.1');
  let buf = '';
  let closed = false;
  s.on('data', (d) => (buf += d.toString('latin1')));
  s.on('error', () => {});
  s.on('close', () => (closed = true));
  return {
    get closed() {
      return closed;
    },
    /** Sends a GET and resolves with the response head once the whole response arrived. */
    async get(path: string, timeoutMs = 10_000): Promise<string> {
      buf = '';
      s.write(`GET ${path} HTTP/1.1\r\nHost: drain\r\n\r\n`);
      const end = Date.now() + timeoutMs;
      for (;;) {
        const head = buf.indexOf('\r\n\r\n');
        const len = Number(/content-length: (\d+)/i.exec(buf)?.[1] ?? -1);
        if (head >= 0 && len >= 0 && buf.length >= head + 4 + len) return buf.slice(0, head);
        if (closed || Date.now() > end) return buf;
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    destroy: () => s.destroy(),
  };
}

test('a listener removed under fortio load at 500 rps: 0 failed requests, then its connections are drained within the drain time', { skip: skipUnlessTools('fortio'), timeout: 120_000 }, async (t) => {
  const drainS = 12;
  const pair = await startGatewayPair(cleanups, {
    drainTimeout: `${drainS}s`,
    files: { 'vs.yaml': edgeVirtualService('  - route: [{destination: {host: backend.default.svc.cluster.local, port: {number: 8080}}}]\n') },
  });
  const port = pair.trellis.port;
  // Connections opened before the removal: an idle HTTP/1.1 one, one that sends a request later,
  // one with a request in flight across the removal, and an HTTP/2 session.
  const idle = keepAlive(port);
  const later = keepAlive(port);
  assert.match(await later.get('/before'), /^HTTP\/1\.1 200/);
  const busy = keepAlive(port);
  const h2 = http2.connect(`http://127.0.0.1:${port}`);
  h2.on('error', () => {});
  let goawayAt = 0;
  h2.on('goaway', () => (goawayAt ||= Date.now()));
  await new Promise<void>((resolve, reject) => {
    const st = h2.request({ ':path': '/h2-before', ':authority': 'drain' });
    st.on('response', (h) => (h[':status'] === 200 ? resolve() : reject(new Error(`h2 status ${h[':status']}`))));
    st.on('error', reject);
    st.resume();
  });

  const fortio = run(findTool('fortio')!, ['load', '-qps', '500', '-c', '8', '-t', '6s', '-uniform', '-nocatchup', '-keepalive=true', '-json', '-',
    `http://127.0.0.1:${port}/under-load`], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  await new Promise((r) => setTimeout(r, 2000));
  pair.backend.slowMs = 3000;
  const inFlight = busy.get('/slow-in-flight', 20_000);
  await new Promise((r) => setTimeout(r, 200));
  // The Gateway goes away (its file keeps only the backend Service): the listener is removed.
  const removedAt = Date.now();
  pair.write('gateway.yaml', serviceYaml('backend', [pair.backend.port]));
  // When the proxy applied the removal: its port stops accepting (probed every 50 ms).
  const refusedAt = await new Promise<number>((resolve, reject) => {
    const probe = async (): Promise<void> => {
      const refused = await new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('connect', () => (s.destroy(), r(false)));
        s.on('error', () => r(true));
      });
      if (refused) return resolve(Date.now());
      if (Date.now() - removedAt > 10_000) return reject(new Error('the removed listener still accepts connections'));
      setTimeout(() => void probe(), 50);
    };
    void probe();
  });
  t.diagnostic(`listener stopped accepting ${refusedAt - removedAt} ms after the Gateway file changed`);

  const { stdout } = await fortio;
  const result = JSON.parse(stdout) as { RetCodes: Record<string, number>; DurationHistogram: { Count: number }; ActualQPS: number; SocketCount?: number; Sockets?: number[] };
  const total = result.DurationHistogram.Count;
  const failed = total - (result.RetCodes['200'] ?? 0);
  // The reached rate is the machine's business (printed); what matters is that the load kept
  // running on the removed listener's connections and nothing failed.
  const servedAfter = pair.backend.hits.filter((h) => h.target === '/under-load' && h.at > refusedAt).length;
  t.diagnostic(`[summary] listener removal under load: fortio ${total} requests at ${result.ActualQPS.toFixed(0)} of 500 rps, ${servedAfter} of them after the listener stopped accepting, ${failed} failed (${JSON.stringify(result.RetCodes)})`);
  assert.equal(failed, 0, `failed requests: ${JSON.stringify(result.RetCodes)}`);
  assert.ok(servedAfter > 0, 'requests kept flowing on the removed listener\'s connections');

  // The in-flight request finishes normally.
  assert.match(await inFlight, /^HTTP\/1\.1 200/);
  pair.backend.slowMs = 0;
  const halfMs = (drainS / 2) * 1000;
  // Within the first half of the drain time the connection is served as before...
  if (Date.now() - refusedAt < halfMs - 1000) assert.doesNotMatch(await later.get('/during'), /connection: close/i);
  // ...in the second half a response says `connection: close` and the connection ends; HTTP/2 gets GOAWAY.
  let closeAt = 0;
  while (closeAt === 0 && Date.now() < refusedAt + drainS * 1000) {
    const head = await later.get('/polling');
    assert.match(head, /^HTTP\/1\.1 200/);
    if (/connection: close/i.test(head)) closeAt = Date.now();
    else await new Promise((r) => setTimeout(r, 250));
  }
  // GOAWAY is sent at the same point, on the session's own timer: under load its event may land
  // after the HTTP/1.1 poll saw `connection: close`, so wait for it up to the drain time.
  while (goawayAt === 0 && Date.now() < refusedAt + drainS * 1000) await new Promise((r) => setTimeout(r, 50));
  t.diagnostic(`connection: close ${closeAt - refusedAt} ms, GOAWAY ${goawayAt - refusedAt} ms after the listener stopped accepting`);
  assert.ok(closeAt - refusedAt >= halfMs - 500, `connection: close came ${closeAt - refusedAt} ms after the removal`);
  assert.ok(goawayAt > 0 && goawayAt - refusedAt >= halfMs - 500 && goawayAt - refusedAt <= drainS * 1000, `GOAWAY ${goawayAt - refusedAt} ms after the removal`);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(later.closed, 'the connection closed after its connection: close response');
  // The idle connection is closed at the drain time, not before the second half.
  assert.equal(idle.closed, false, 'an idle connection is not cut early');
  // Timers run late on a loaded machine: a few seconds of slack past the drain time.
  const deadline = refusedAt + drainS * 1000 + 5000;
  while (!idle.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(idle.closed, 'the idle connection was closed by the drain time');
  t.diagnostic(`idle connection closed ${Date.now() - refusedAt} ms after the removal (drain time ${drainS} s)`);
  for (const c of [idle, later, busy]) c.destroy();
  h2.destroy();
});
