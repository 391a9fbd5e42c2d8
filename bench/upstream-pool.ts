/**
 * Which client should the proxy's upstream connection pool sit on? Compares, on loopback against
 * one node:http (and one node:http2 h2c) server, a fixed number of small GET requests with a fixed
 * concurrency through: node:http with a keep-alive Agent, undici Pool (HTTP/1.1), the proxy's own
 * HTTP/1.1 pool (src/proxy/upstream/pool-h1.ts, issue 16), raw node:http2 session (h2c, one
 * multiplexed session). undici's allowH2 is not measured: it only speaks h2 over TLS (ALPN), which
 * would measure TLS rather than the pool.
 *
 * Run: `node_modules/node/bin/node bench/upstream-pool.ts [requests=20000] [concurrency=64] [rounds=3]`.
 * Bounded: each case stops after `requests` responses; the cases run interleaved, `rounds` times.
 * Prints, per case, the median of: requests/second, client CPU microseconds per request and V8
 * heap bytes allocated per request (live heap growth plus what GCs freed, v8.GCProfiler; buffer
 * contents live outside the heap and are not counted). On a shared machine CPU and bytes per
 * request are the steadier figures. The servers run in a child process so they do not share the
 * client's event loop or its CPU count.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import { Pool } from 'undici';
import { Host } from '../src/proxy/upstream/host.ts';
import { createH1Pool } from '../src/proxy/upstream/pool-h1.ts';
import { newClusterStats } from '../src/proxy/upstream/stats.ts';
import { CancelToken } from '../src/proxy/upstream/types.ts';
import type { SecretProvider } from '../src/proxy/tls/secret-provider.ts';

const total = Number(process.argv[2] === 'serve' ? 0 : process.argv[2] ?? 20000);
const concurrency = Number(process.argv[3] ?? 64);
const rounds = Number(process.argv[4] ?? 3);
const payload = Buffer.from('hello from the upstream\n');

function listen(server: http.Server | http2.Http2Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

interface Sample { rps: number; cpuUs: number; heapBytes: number }
const samples = new Map<string, Sample[]>();

/** Heap bytes allocated so far: live heap plus everything GCs freed since `profiler` started. */
function allocated(profiler: v8.GCProfiler): { bytes: number; restart: v8.GCProfiler } {
  const r = profiler.stop();
  let freed = 0;
  for (const s of r?.statistics ?? []) freed += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize);
  const restart = new v8.GCProfiler();
  restart.start();
  return { bytes: v8.getHeapStatistics().used_heap_size + freed, restart };
}

async function run(name: string, one: () => Promise<void>): Promise<void> {
  // Warm up connections and JIT so the first case is not penalised.
  for (let i = 0; i < 500; i++) await one();
  let started = 0;
  let profiler = new v8.GCProfiler();
  profiler.start();
  const heap0 = v8.getHeapStatistics().used_heap_size;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  async function worker(): Promise<void> {
    while (started < total) {
      started++;
      await one();
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const a = allocated(profiler);
  profiler = a.restart;
  profiler.stop();
  const sample = { rps: (total / ms) * 1000, cpuUs: (cpu.user + cpu.system) / total, heapBytes: (a.bytes - heap0) / total };
  samples.set(name, [...(samples.get(name) ?? []), sample]);
  process.stdout.write(`${name.padEnd(34)} ${Math.round(sample.rps).toString().padStart(8)} req/s ${sample.cpuUs.toFixed(1).padStart(7)} CPU us/req ${Math.round(sample.heapBytes).toString().padStart(7)} heap B/req  (${total} requests, concurrency ${concurrency}, ${ms.toFixed(0)} ms)\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

if (process.argv[2] === 'serve') {
  const h1 = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': payload.length });
    res.end(payload);
  });
  h1.keepAliveTimeout = 60_000;
  const h2 = http2.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': payload.length });
    res.end(payload);
  });
  process.stdout.write(`${await listen(h1)} ${await listen(h2)}\n`);
  // Exit with the parent.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else {
  await client();
}

async function client(): Promise<void> {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const [h1Port, h2Port] = line.toString().trim().split(' ').map(Number);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const pool = new Pool(`http://127.0.0.1:${h1Port}`, { connections: concurrency });
  const host = new Host('127.0.0.1', h1Port, { weight: 1, health: 'HEALTHY', locality: { region: '', zone: '', subZone: '' }, localityWeight: undefined, priority: 0, tls: undefined });
  const ours = createH1Pool(host, { connect: { timeoutMs: 5000, secrets: undefined as unknown as SecretProvider, stats: newClusterStats() }, maxConnections: concurrency, idleTimeoutMs: 60_000, maxRequestsPerConnection: 0 });
  const session = http2.connect(`http://127.0.0.1:${h2Port}`);
  for (let round = 1; round <= rounds; round++) {
    process.stdout.write(`round ${round} of ${rounds}\n`);
    await run('node:http Agent keep-alive (h1)', () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: h1Port, path: '/', agent }, (res) => {
          res.on('data', () => {});
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      }),
    );
    await run('undici Pool (h1)', async () => {
      const { body } = await pool.request({ path: '/', method: 'GET' });
      for await (const _ of body) {
        // drain
      }
    });
    await run('trellis pool-h1 (h1)', async () => {
      const res = await ours.request({ method: 'GET', path: '/', authority: `127.0.0.1:${h1Port}`, scheme: 'http', headers: {}, body: null, cancel: new CancelToken(), isRetry: false });
      for await (const _ of res.body) {
        // drain
      }
      await new Promise<void>((r) => res.onDone(r));
    });
    await run('node:http2 session (h2c, 1 conn)', () =>
      new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':path': '/', ':method': 'GET' });
        stream.on('data', () => {});
        stream.on('end', resolve);
        stream.on('error', reject);
        stream.end();
      }),
    );
  }
  agent.destroy();
  await pool.close();
  await ours.drain();
  session.close();
  process.stdout.write(`\nmedians of ${rounds} rounds (${total} requests each, concurrency ${concurrency})\n`);
  for (const [name, xs] of samples) {
    process.stdout.write(`${name.padEnd(34)} ${Math.round(median(xs.map((x) => x.rps))).toString().padStart(8)} req/s ${median(xs.map((x) => x.cpuUs)).toFixed(1).padStart(7)} CPU us/req ${Math.round(median(xs.map((x) => x.heapBytes))).toString().padStart(7)} heap B/req\n`);
  }

  child.stdin.end();
  child.kill();
}
