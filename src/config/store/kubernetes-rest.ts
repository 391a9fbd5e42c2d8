/**
 * The Kubernetes REST calls the control plane makes, on `@kubernetes/client-node`'s KubeConfig
 * (kubeconfig files, in-cluster service-account config, client certificates, tokens, exec
 * plugins) and its Watch: plain JSON requests by path (list pages, get, create, server-side
 * apply, merge patches of the `status` subresource, deletes) and watch streams. Paths are built
 * from a static kind table (kubernetes-kinds.ts) instead of discovery, so a missing CRD is a
 * plain 404 we can report. Errors carry the HTTP status and the API server's Status reason and
 * message (`KUBE_API`), which is what callers branch on (404 absent, 409 conflict, 410 expired).
 */
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { fetch } from 'undici';
import type { Dispatcher } from 'undici';
import { TrellisError } from '../../errors.ts';

/** A Kubernetes object as JSON (only what every object has is typed). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** A list answer. */
export interface KubeList<T = KubeObject> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** An API error: HTTP status plus the API server's Status reason and message. */
export class KubeApiError extends TrellisError {
  readonly status: number;
  readonly reason: string;
  constructor(method: string, path: string, status: number, reason: string, message: string) {
    super('KUBE_API', `${method} ${path}: ${status} ${reason}${message ? `: ${message}` : ''}`, { context: { status, reason } });
    this.status = status;
    this.reason = reason;
  }
}

/** The HTTP status of a KubeApiError (or of the Watch's errors), 0 for a network error. */
export function apiStatus(err: unknown): number {
  if (err instanceof KubeApiError) return err.status;
  const e = err as { statusCode?: unknown; code?: unknown } | undefined;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  if (typeof e?.code === 'number') return e.code;
  return 0;
}

/** One watch event as the API server streams it. */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: KubeObject & { code?: number; reason?: string; message?: string };
}

/** Options of a request. */
export interface RequestOptions {
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly body?: unknown;
  /** Default application/json; server-side apply uses application/apply-patch+yaml (JSON is YAML). */
  readonly contentType?: string;
  readonly timeoutMs?: number;
}

/** Loads a KubeConfig: from a file when given, else in-cluster, else the default places ($KUBECONFIG, ~/.kube/config). */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (kc.getCurrentCluster() === null) throw new TrellisError('KUBE_CONFIG', `kubeconfig${path ? ` ${path}` : ''} names no current cluster`);
  return kc;
}

/** JSON requests and watches against one API server. */
export class KubeRest {
  readonly kc: KubeConfig;
  readonly server: string;
  constructor(kc: KubeConfig) {
    this.kc = kc;
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new TrellisError('KUBE_CONFIG', 'kubeconfig names no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** One request; resolves with the parsed JSON body, rejects with KubeApiError on a non-2xx. */
  async request<T = KubeObject>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    await this.kc.applySecurityAuthentication(ctx);
    const headers = ctx.getHeaders() as unknown as Record<string, string>;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = opts.contentType ?? 'application/json';
    }
    headers.Accept = 'application/json';
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body,
        dispatcher: ctx.getDispatcher() as Dispatcher | undefined,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new TrellisError('KUBE_UNREACHABLE', `${method} ${this.server}${path}: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      json = { message: text.slice(0, 300) };
    }
    if (res.status < 200 || res.status > 299) {
      const s = json as { reason?: string; message?: string };
      throw new KubeApiError(method, path, res.status, s.reason ?? res.statusText, s.message ?? '');
    }
    return json as T;
  }

  /** Lists every page of a collection (`limit` objects a page); the list's resourceVersion is the last page's. */
  async listAll<T = KubeObject>(path: string, query: RequestOptions['query'] = {}, limit = 500): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await this.request<KubeList<T>>('GET', path, { query: { ...query, limit, continue: cont } });
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion;
    } while (cont !== undefined);
    return { metadata: { resourceVersion: rv }, items };
  }

  /**
   * Starts a watch (with bookmarks) and calls `onEvent` for each event and `onDone` once when the
   * stream ends, cleanly (the server's `timeoutSeconds`) or not. A stream silent for
   * `inactivityMs` is treated as dead: the API server sends a bookmark about once a minute on a
   * quiet resource, and a half-open TCP connection would otherwise wait forever. Returns the
   * stop function (no `onDone` after it).
   */
  watch(path: string, query: Readonly<Record<string, string | number | boolean | undefined>>, onEvent: (e: WatchEvent) => void, onDone: (err: unknown) => void, inactivityMs = 150_000): () => void {
    const controller = new AbortController();
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      controller.abort();
      onDone(err);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(new TrellisError('KUBE_WATCH_SILENT', `watch ${path}: nothing for ${inactivityMs} ms`)), inactivityMs);
      timer.unref();
    };
    void (async () => {
      const url = new URL(this.server + path);
      url.searchParams.set('watch', 'true');
      url.searchParams.set('allowWatchBookmarks', 'true');
      for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
      const ctx = new RequestContext(url.toString(), HttpMethod.GET);
      await this.kc.applySecurityAuthentication(ctx);
      arm();
      const res = await fetch(url, { headers: ctx.getHeaders() as unknown as Record<string, string>, dispatcher: ctx.getDispatcher() as Dispatcher | undefined, signal: controller.signal });
      if (res.status !== 200) {
        const text = await res.text().catch(() => '');
        let s: { reason?: string; message?: string } = {};
        try {
          s = JSON.parse(text) as typeof s;
        } catch {
          // not a Status
        }
        throw new KubeApiError('WATCH', path, res.status, s.reason ?? res.statusText, s.message ?? '');
      }
      let buf = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        if (finished) return;
        arm();
        buf += decoder.decode(chunk, { stream: true });
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let e: WatchEvent;
          try {
            e = JSON.parse(line) as WatchEvent;
          } catch {
            throw new TrellisError('KUBE_WATCH_DECODE', `watch ${path}: undecodable event: ${line.slice(0, 200)}`);
          }
          onEvent(e);
          if (finished) return;
        }
      }
    })().then(() => finish(null), (err: unknown) => finish(finished ? null : err));
    return () => {
      finished = true;
      clearTimeout(timer);
      controller.abort();
    };
  }
}
