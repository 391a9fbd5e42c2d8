/**
 * Issue 18, finding 6: what an idle connection costs. The memory figures come from
 * `npm run bench:idle` (RSS is load- and allocator-dependent, so no test asserts it); these tests
 * guard the two causes the bench found: per-connection closures and per-request state kept by an
 * idle connection (connection manager, listener layer), and a `trellis proxy` whose V8 young
 * generation is not capped (bin/node-flags.js), including its `--concurrency` workers.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { StaticClusterManager } from './support/static-cluster-manager.ts';
import { hcmConfig, startBackend, testConnectionManager } from './support/connection-manager-harness.ts';
import { missingNodeFlags, ProxySemiSpaceMb } from '../bin/node-flags.js';
import { Cleanups } from './support/processes.ts';
import { edgeVirtualService, exchange, startGatewayPair } from './support/gateway-pair.ts';
import { openIdleConnections, processTree } from './support/idle-connections.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

/** Sends one GET on an open keep-alive connection and waits for its complete response. */
function get(s: net.Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
      if (buf.length < head + 4 + len) return;
      s.off('data', onData);
      resolve(buf.slice(0, 12));
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(`GET ${path} HTTP/1.1\r\nHost: idle\r\n\r\n`);
  });
}

/** Listeners a socket has that are not node's own per-socket bound functions. */
function unboundListeners(s: net.Socket): Map<string, Function[]> {
  const out = new Map<string, Function[]>();
  for (const ev of s.eventNames()) {
    if (typeof ev !== 'string') continue;
    out.set(ev, s.listeners(ev).filter((f) => !f.name.startsWith('bound ')));
  }
  return out;
}

test('an idle HTTP/1.1 connection keeps no per-request state and no closures of its own', async (t) => {
  const be = await startBackend((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const clusters = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const hcm = testConnectionManager({ clusterManager: clusters, config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }) });
  const served: net.Socket[] = [];
  const front = net.createServer((s) => {
    served.push(s);
    hcm.handleConnection(s, 'http/1.1');
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const port = (front.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  t.after(async () => {
    for (const c of clients) c.destroy();
    front.close();
    await hcm.close(200);
    await be.close();
    clusters.close();
  });

  for (let i = 0; i < 2; i++) {
    const c = net.connect(port, '127.0.0.1');
    clients.push(c);
    await once(c, 'connect');
  }
  const listenerCounts: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (const c of clients) assert.equal(await get(c, `/r${round}`), 'HTTP/1.1 200');
    await new Promise((r) => setImmediate(r));
    listenerCounts.push(served.reduce((n, s) => n + s.eventNames().reduce((m, ev) => m + s.listenerCount(ev), 0), 0));
  }
  assert.equal(served.length, 2);
  assert.equal(hcm.connectionCount, 2);
  // Requests leave nothing behind on the connection: no listeners added per request...
  assert.equal(new Set(listenerCounts).size, 1, `listeners after each round: ${listenerCounts.join(', ')}`);
  for (const s of served) {
    // ...and no in-flight bookkeeping once the last exchange ended.
    const inFlight = Object.getOwnPropertySymbols(s).find((k) => k.description === 'trellis.inFlight');
    assert.equal(inFlight === undefined ? undefined : (s as unknown as Record<symbol, unknown>)[inFlight], undefined, 'idle connection still holds its in-flight map');
  }
  // Every handler the connection manager installed is one function shared by all connections
  // (node's own per-socket handlers are bound functions and are left out of the comparison).
  const [a, b] = served.map(unboundListeners);
  for (const [ev, fns] of a) {
    for (const f of fns) assert.ok(b.get(ev)?.includes(f), `'${ev}' listener ${f.name || '(anonymous)'} is per connection: ${String(f).slice(0, 120)}`);
  }
  // Closing still forgets the connection.
  for (const c of clients) c.destroy();
  const deadline = Date.now() + 5000;
  while (hcm.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(hcm.connectionCount, 0);
});

test('trellis proxy gets a capped young generation, no Maglev and keeps its optimized code across idle GCs unless the operator chose otherwise', () => {
  const semi = `--max-semi-space-size=${ProxySemiSpaceMb}`;
  const keepCode = '--no-memory-reducer-favors-memory';
  assert.deepEqual(missingNodeFlags(['proxy', '--xds', 'x:1'], [], undefined), [semi, '--no-maglev', keepCode]);
  assert.deepEqual(missingNodeFlags(['proxy'], ['--max-semi-space-size=64'], undefined), ['--no-maglev', keepCode]);
  assert.deepEqual(missingNodeFlags(['proxy'], [], '--max-old-space-size=512 --max_semi_space_size=4'), ['--no-maglev', keepCode]);
  assert.deepEqual(missingNodeFlags(['proxy'], ['--maglev'], undefined), [semi, keepCode]);
  assert.deepEqual(missingNodeFlags(['proxy'], ['--memory-reducer-favors-memory'], undefined), [semi, '--no-maglev']);
  assert.deepEqual(missingNodeFlags(['proxy'], ['--no-maglev', '--max-semi-space-size=8', '--no_memory_reducer_favors_memory'], undefined), []);
  assert.deepEqual(missingNodeFlags(['control'], [], undefined), []);
  assert.deepEqual(missingNodeFlags(['up'], [], undefined), []);
  assert.deepEqual(missingNodeFlags([], [], undefined), []);
});

test('trellis proxy and its workers run with a capped young generation and keep many idle connections open', async () => {
  const pair = await startGatewayPair(cleanups, {
    trellisArgs: ['--concurrency', '2'],
    files: { 'vs.yaml': edgeVirtualService('  - route: [{destination: {host: backend.default.svc.cluster.local, port: {number: 8080}}}]\n') },
  });
  const pids = processTree(pair.trellis.child.pid!);
  assert.ok(pids.length >= 3, `primary and 2 workers, found ${pids.length} processes`);
  for (const pid of pids) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes(`--max-semi-space-size=${ProxySemiSpaceMb}`) && argv.includes('--no-maglev') && argv.includes('--no-memory-reducer-favors-memory'), `process ${pid}: ${argv.join(' ')}`);
  }
  const port = pair.trellis.port;
  const deadline = Date.now() + 60_000;
  const sets = [
    await openIdleConnections({ port, count: 300, kind: 'http1', deadline }),
    await openIdleConnections({ port, count: 300, kind: 'silent', deadline }),
    await openIdleConnections({ port, count: 100, kind: 'h2', deadline }),
  ];
  try {
    assert.deepEqual(sets.map((s) => s.failed), [0, 0, 0]);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(sets.map((s) => s.open), [300, 300, 100], 'idle connections were closed before any idle timeout');
    const ex = await exchange(port, 'GET /after HTTP/1.1\r\nHost: idle\r\nConnection: close\r\n\r\n', 5000);
    assert.deepEqual(ex.statuses, [200]);
  } finally {
    for (const s of sets) s.close();
  }
});
