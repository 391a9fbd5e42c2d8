/**
 * Sends a generated request to a proxy with raw `http.request` (so Host and header-name case are
 * exactly what the generator chose) and reduces the answer to what must be identical between
 * Envoy and Trellis: status, response headers, the echo backend's view of the request (which
 * backend, path, host, method, headers) or, for local replies, the body. Every header left out of
 * the comparison is listed below with the reason.
 */
import http from 'node:http';
import type { GenRequest } from './generate.ts';

/**
 * Response headers not compared:
 * - date: wall clock.
 * - x-envoy-upstream-service-time: a measured latency.
 * - connection, keep-alive, transfer-encoding, content-length: message framing between the proxy
 *   and this client (hop-by-hop); bodies are compared instead (echo bodies embed a per-request id,
 *   so their length legitimately differs).
 */
export const IGNORED_RESPONSE_HEADERS: ReadonlySet<string> = new Set(['date', 'x-envoy-upstream-service-time', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/**
 * Request headers the echo backend saw that are not compared:
 * - X-Request-Id: a random UUID generated per request by each proxy.
 * - Connection, Keep-Alive, Transfer-Encoding, Content-Length: message framing on each proxy's own
 *   upstream connection (an empty chunked request body may go upstream chunked or as
 *   Content-Length: 0; the echo backend does not report bodies, so only framing could differ).
 */
export const IGNORED_UPSTREAM_HEADERS: ReadonlySet<string> = new Set(['X-Request-Id', 'Connection', 'Keep-Alive', 'Transfer-Encoding', 'Content-Length']);

/** The comparable result of one request. */
export interface Outcome {
  status: number;
  headers: Record<string, string[]>;
  /** What the echo backend saw, when the request reached one. */
  upstream?: { pod: string; path: string; host: string; method: string; proto: string; headers: Record<string, string[]> };
  /** The body of a local reply (direct response, redirect, 404...). */
  body?: string;
  /** Transport error text, when no response came. */
  error?: string;
}

function sorted<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Sends `req` to 127.0.0.1:port and normalizes the result. */
export function send(port: number, req: GenRequest, agent: http.Agent, timeoutMs = 5000): Promise<Outcome> {
  return new Promise((resolve) => {
    const raw: string[] = ['Host', req.authority];
    for (const [k, v] of req.headers) raw.push(k, v);
    const r = http.request({ host: '127.0.0.1', port, method: req.method, path: req.path, headers: raw, setHost: false, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers: Record<string, string[]> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i].toLowerCase();
          if (IGNORED_RESPONSE_HEADERS.has(name)) continue;
          (headers[name] ??= []).push(res.rawHeaders[i + 1]);
        }
        const text = Buffer.concat(chunks).toString('utf8');
        const out: Outcome = { status: res.statusCode ?? 0, headers: sorted(headers) };
        let echo: Record<string, unknown> | undefined;
        if (String(res.headers['content-type'] ?? '').startsWith('application/json')) {
          try {
            echo = JSON.parse(text) as Record<string, unknown>;
          } catch {
            echo = undefined;
          }
        }
        if (echo !== undefined && typeof echo.pod === 'string') {
          const h: Record<string, string[]> = {};
          for (const [k, v] of Object.entries(echo.headers as Record<string, string[]>)) if (!IGNORED_UPSTREAM_HEADERS.has(k)) h[k] = v;
          out.upstream = { pod: echo.pod, path: String(echo.path), host: String(echo.host), method: String(echo.method), proto: String(echo.proto), headers: sorted(h) };
        } else {
          out.body = text;
        }
        resolve(out);
      });
      res.on('error', (err) => resolve({ status: 0, headers: {}, error: err.message }));
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (err) => resolve({ status: 0, headers: {}, error: err.message }));
    r.end();
  });
}

/** Human-readable differences between two outcomes (empty when equal). */
export function diffOutcomes(envoy: Outcome, trellis: Outcome): string[] {
  const out: string[] = [];
  const walk = (path: string, a: unknown, b: unknown): void => {
    if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of [...keys].sort()) walk(`${path}.${k}`, (a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path}: envoy=${JSON.stringify(a)} trellis=${JSON.stringify(b)}`);
  };
  walk('', envoy, trellis);
  return out;
}

/** Runs `fn` over `items` with at most `limit` in flight, preserving order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
