/**
 * Recording backends for the raw differential: plain node HTTP/1.1 servers (lenient parser, so
 * whatever a proxy forwards is seen rather than refused) that note every request they get, keyed
 * by its `x-case` header, and answer 200 `ok`. Each proxy gets its own set, so what reached a
 * backend is known per proxy; `take(caseId)` returns (and forgets) what reached it for one case.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Cleanups } from '../support/processes.ts';

/** Header every generated request carries: `<case>` or `<case>.<n>` for the n-th request of a case. */
export const CASE_HEADER = 'x-case';

/** One request as a backend saw it. */
export interface Reached {
  /** `<case>.<n>` from the x-case header. */
  id: string;
  cluster: string;
  method: string;
  url: string;
  version: string;
  /** [lower-case name, value] in arrival order, framing and per-request-random headers removed. */
  headers: [string, string][];
  /** The body bytes received so far (latin1, capped). */
  body: string;
}

/**
 * Headers a backend saw that are not compared: X-Request-Id (a random UUID per request and proxy),
 * message framing on each proxy's own upstream connection (content-length, transfer-encoding,
 * connection, keep-alive: the body is compared instead), and Istio's metadata exchange
 * (x-envoy-peer-metadata / -id): the gateway's stats filter adds them as Istio's proxy does, and
 * a stock Envoy, which has no such filter, skips it as optional.
 */
const IGNORED = new Set(['x-request-id', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'x-envoy-peer-metadata', 'x-envoy-peer-metadata-id']);
const BODY_CAP = 16 * 1024;

/** A set of recording backends, one per cluster name. */
export interface Recorder {
  readonly ports: ReadonlyMap<string, number>;
  /** Everything recorded for `caseId` (ids `caseId` and `caseId.*`), removed from the log. */
  take(caseId: string): Reached[];
  /** Requests that carried no x-case header (a generator bug, or a proxy inventing requests). */
  readonly untagged: Reached[];
}

function caseOf(id: string): string {
  const dot = id.indexOf('.');
  return dot < 0 ? id : id.slice(0, dot);
}

/** Starts one recording backend per cluster name on 127.0.0.1:0. */
export async function startRecorder(cleanups: Cleanups, clusters: readonly string[]): Promise<Recorder> {
  const byCase = new Map<string, Reached[]>();
  const untagged: Reached[] = [];
  const ports = new Map<string, number>();
  for (const cluster of clusters) {
    const server = http.createServer({ insecureHTTPParser: true, maxHeaderSize: 1024 * 1024, requireHostHeader: false, keepAliveTimeout: 600_000, headersTimeout: 600_000, requestTimeout: 0 }, (req, res) => {
      const headers: [string, string][] = [];
      let id = '';
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i].toLowerCase();
        if (name === CASE_HEADER && id === '') id = req.rawHeaders[i + 1];
        if (!IGNORED.has(name)) headers.push([name, req.rawHeaders[i + 1]]);
      }
      const rec: Reached = { id, cluster, method: req.method ?? '', url: req.url ?? '', version: req.httpVersion, headers, body: '' };
      if (id === '') untagged.push(rec);
      else {
        const list = byCase.get(caseOf(id));
        if (list) list.push(rec);
        else byCase.set(caseOf(id), [rec]);
      }
      req.on('data', (c: Buffer) => {
        if (rec.body.length < BODY_CAP) rec.body += c.toString('latin1').slice(0, BODY_CAP - rec.body.length);
      });
      req.on('error', () => {});
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      });
    });
    server.on('clientError', (_err, socket) => (socket as Socket).destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.add(() => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
    ports.set(cluster, (server.address() as AddressInfo).port);
  }
  return {
    ports,
    untagged,
    take(caseId) {
      const list = byCase.get(caseId) ?? [];
      byCase.delete(caseId);
      return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
  };
}
