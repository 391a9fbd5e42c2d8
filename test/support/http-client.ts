/**
 * A tiny bounded HTTP/1.1 client for end-to-end tests: one request to 127.0.0.1:port with a Host
 * header, a fresh connection each time (so a proxy's per-connection state never leaks between
 * assertions), the body parsed as JSON when it is JSON, and the elapsed time.
 */
import { request } from 'node:http';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The echo server's JSON answer (path, host, pod, headers...) when the body is JSON. */
  json?: { path?: string; host?: string; pod?: string; headers?: Record<string, string[]> } & Record<string, unknown>;
  ms: number;
}

/** GET http://127.0.0.1:<port><path> with `Host: host`; rejects on socket errors and after `timeoutMs`. */
export function httpGet(port: number, path: string, host: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<HttpResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host, connection: 'close', ...headers }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let json: HttpResult['json'];
        try {
          json = JSON.parse(body) as HttpResult['json'];
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json, ms: performance.now() - t0 });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: GET ${path} Host ${host}`)));
    req.end();
  });
}

/** Runs `n` requests with `concurrency` workers and counts answers by `key(result)`. */
export async function tally(n: number, concurrency: number, one: () => Promise<HttpResult>, key: (r: HttpResult) => string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      let k: string;
      try {
        k = key(await one());
      } catch (err) {
        k = `error: ${(err as Error).message}`;
      }
      counts[k] = (counts[k] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}
