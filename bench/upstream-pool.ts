/**
 * Which client should the proxy's upstream connection pool sit on? Compares, on loopback against
 * one node:http (and one node:http2 h2c) server, a fixed number of small GET requests with a fixed
 * concurrency through: node:http with a keep-alive Agent, undici Pool (HTTP/1.1), raw node:http2
 * session (h2c, one multiplexed session). undici's allowH2 is not measured: it only speaks h2 over
 * TLS (ALPN), which would measure TLS rather than the pool.
 *
 * Run: `./node_modules/.bin/node bench/upstream-pool.ts [requests=20000] [concurrency=64]`.
 * Bounded: each case stops after `requests` responses. Prints requests/second per case. The
 * servers run in a child process so they do not share the client's event loop.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const total = Number(process.argv[2] === 'serve' ? 0 : process.argv[2] ?? 20000);
const concurrency = Number(process.argv[3] ?? 64);
const payload = Buffer.from('hello from the upstream\n');

function listen(server: http.Server | http2.Http2Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

async function run(name: string, one: () => Promise<void>): Promise<void> {
  // Warm up connections and JIT so the first case is not penalised.
  for (let i = 0; i < 500; i++) await one();
  let started = 0;
  const t0 = performance.now();
  async function worker(): Promise<void> {
    while (started < total) {
      started++;
      await one();
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - t0;
  process.stdout.write(`${name.padEnd(34)} ${Math.round((total / ms) * 1000).toString().padStart(8)} req/s  (${total} requests, concurrency ${concurrency}, ${ms.toFixed(0)} ms)\n`);
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
  agent.destroy();

  const pool = new Pool(`http://127.0.0.1:${h1Port}`, { connections: concurrency });
  await run('undici Pool (h1)', async () => {
    const { body } = await pool.request({ path: '/', method: 'GET' });
    for await (const _ of body) {
      // drain
    }
  });
  await pool.close();

  const session = http2.connect(`http://127.0.0.1:${h2Port}`);
  await run('node:http2 session (h2c, 1 conn)', () =>
    new Promise<void>((resolve, reject) => {
      const stream = session.request({ ':path': '/', ':method': 'GET' });
      stream.on('data', () => {});
      stream.on('end', resolve);
      stream.on('error', reject);
      stream.end();
    }),
  );
  session.close();

  child.stdin.end();
  child.kill();
}
