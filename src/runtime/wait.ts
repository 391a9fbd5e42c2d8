/**
 * Bounded waits the supervisor uses while starting things: for a ready file to appear, for an HTTP
 * endpoint to answer 200, for a TCP port to accept. Each polls with a short interval, gives up
 * after its deadline with a TrellisError naming what it waited for, and stops early when the
 * caller's `abort` check says the awaited process is already gone.
 */
import { readFileSync } from 'node:fs';
import http from '../node-http.ts';
import { TrellisError } from '../errors.ts';
import { isListening } from './ports.ts';

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Why to stop waiting early (e.g. "process exited with code 1"), or undefined to keep waiting. */
export type AbortCheck = () => string | undefined;

async function poll<T>(what: string, timeoutMs: number, abort: AbortCheck | undefined, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    const why = abort?.();
    if (why !== undefined) throw new TrellisError('RUNTIME_START', `${what}: ${why}`);
    if (Date.now() > deadline) throw new TrellisError('RUNTIME_TIMEOUT', `${what}: not ready after ${(timeoutMs / 1000).toFixed(1)} s`);
    await sleep(50);
  }
}

/** Status code of GET http://host:port/path (default host 127.0.0.1), or undefined when nothing answers. */
export function httpStatus(port: number, path: string, timeoutMs = 1000, host = '127.0.0.1'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ host, port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** GET http://127.0.0.1:port/path as JSON, or undefined. */
export function httpJson(port: number, path: string, timeoutMs = 1000): Promise<unknown> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Waits until `path` holds a JSON object; returns it. */
export function waitForJsonFile(what: string, path: string, timeoutMs: number, abort?: AbortCheck): Promise<Record<string, unknown>> {
  return poll(what, timeoutMs, abort, async () => {
    try {
      const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
      return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  });
}

/** Waits until GET http://host:port/path (default host 127.0.0.1) answers 200. */
export function waitForHttp200(what: string, port: number, path: string, timeoutMs: number, abort?: AbortCheck, host = '127.0.0.1'): Promise<true> {
  return poll(what, timeoutMs, abort, async () => ((await httpStatus(port, path, 1000, host)) === 200 ? true : undefined));
}

/** Waits until `check` resolves true. */
export function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, abort?: AbortCheck): Promise<true> {
  return poll(what, timeoutMs, abort, async () => ((await check()) ? true : undefined));
}

/** Waits until 127.0.0.1:port accepts a TCP connection. */
export function waitForTcp(what: string, port: number, timeoutMs: number, abort?: AbortCheck, host = '127.0.0.1'): Promise<true> {
  return poll(what, timeoutMs, abort, async () => ((await isListening(port, host)) ? true : undefined));
}
