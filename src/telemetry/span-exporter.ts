/**
 * Sends finished spans to a tracing backend with the OpenTelemetry JS exporters: OTLP/HTTP (JSON,
 * `@opentelemetry/exporter-trace-otlp-http`) or Zipkin v2 JSON (`@opentelemetry/exporter-zipkin`).
 * Spans arrive as plain records (what a proxy knows when a request ends) and become the SDK's
 * ReadableSpan only here, off the request path, in batches: a bounded queue (spans beyond it are
 * dropped and counted, as the SDK's BatchSpanProcessor does), flushed every `flushMs` or when a
 * batch is full. The exporter packages are loaded on first use, so a proxy without tracing never
 * loads them.
 *
 * Where to send is asked per batch (`target()`), because the collector's address comes from a
 * cluster whose endpoints can change; one exporter is kept per URL.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { Attributes } from '@opentelemetry/api';

/** A span as a proxy records it. Times are epoch milliseconds (fractional). */
export interface FinishedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  /** OpenTelemetry SpanKind: 1 SERVER, 2 CLIENT. */
  readonly kind: 1 | 2;
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Attributes;
  readonly error: boolean;
  readonly tracestate: string | undefined;
}

export type SpanProtocol = 'otlp-http' | 'zipkin';

export interface SpanSinkOptions {
  readonly protocol: SpanProtocol;
  /** The collector URL for the next batch (undefined: no endpoint now; the batch is dropped). */
  readonly target: () => string | undefined;
  /** Resource attributes; `service.name` names the proxy's service. */
  readonly resource: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  readonly maxQueue?: number;
  readonly maxBatch?: number;
  readonly flushMs?: number;
}

interface Exporter {
  export(spans: ReadableSpan[], done: (r: { code: number; error?: Error }) => void): void;
  shutdown(): Promise<void>;
}

interface Sdk {
  makeExporter(protocol: SpanProtocol, url: string, headers: Record<string, string>, timeoutMs: number): Exporter;
  resource(attrs: Readonly<Record<string, string>>): ReadableSpan['resource'];
}

let sdk: Promise<Sdk> | undefined;

function loadSdk(): Promise<Sdk> {
  sdk ??= Promise.all([import('@opentelemetry/exporter-trace-otlp-http'), import('@opentelemetry/exporter-zipkin'), import('@opentelemetry/resources')]).then(([otlp, zipkin, res]) => ({
    makeExporter: (protocol, url, headers, timeoutMillis) => (protocol === 'zipkin'
      ? new zipkin.ZipkinExporter({ url, headers })
      : new otlp.OTLPTraceExporter({ url, headers, timeoutMillis })) as Exporter,
    resource: (attrs) => res.resourceFromAttributes({ ...attrs }),
  }));
  return sdk;
}

const Scope = Object.freeze({ name: 'trellis-proxy', version: '0.1.0' });

function hrTime(ms: number): [number, number] {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

function readable(s: FinishedSpan, resource: ReadableSpan['resource']): ReadableSpan {
  const ctx = { traceId: s.traceId, spanId: s.spanId, traceFlags: 1 };
  const durationMs = Math.max(0, s.endMs - s.startMs);
  return {
    name: s.name,
    kind: s.kind,
    spanContext: () => ctx,
    ...(s.parentSpanId !== undefined ? { parentSpanContext: { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: 1, isRemote: true } } : {}),
    startTime: hrTime(s.startMs),
    endTime: hrTime(s.endMs),
    duration: hrTime(durationMs),
    // SpanStatusCode: 0 UNSET, 2 ERROR (Envoy marks 5xx and failed streams as errors).
    status: { code: s.error ? 2 : 0 },
    attributes: s.attributes,
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: Scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/** Counters a proxy shows on its admin /stats (Envoy's tracing.* names). */
export interface SpanSinkStats {
  /** Spans handed to an exporter. */
  sent: number;
  /** Spans dropped: queue full, no endpoint, or the export failed. */
  dropped: number;
  /** Export calls that failed. */
  failedExports: number;
}

/** A batching span queue in front of one backend. */
export class SpanSink {
  readonly stats: SpanSinkStats = { sent: 0, dropped: 0, failedExports: 0 };
  readonly #o: SpanSinkOptions;
  readonly #maxQueue: number;
  readonly #maxBatch: number;
  #queue: FinishedSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #exporters = new Map<string, Exporter>();
  #inflight = new Set<Promise<void>>();
  #closed = false;

  constructor(o: SpanSinkOptions) {
    this.#o = o;
    this.#maxQueue = o.maxQueue ?? 2048;
    this.#maxBatch = o.maxBatch ?? 512;
  }

  /** Queues a finished span (never blocks; drops when the queue is full). */
  add(span: FinishedSpan): void {
    if (this.#closed || this.#queue.length >= this.#maxQueue) {
      this.stats.dropped++;
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#maxBatch) this.#flushSoon(0);
    else if (this.#timer === undefined) this.#flushSoon(this.#o.flushMs ?? 1000);
  }

  #flushSoon(ms: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, ms).unref();
  }

  /** Exports everything queued; resolves when the exports finished (or failed). */
  async flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      const p = this.#export(batch);
      this.#inflight.add(p);
      void p.finally(() => this.#inflight.delete(p));
    }
    await Promise.all([...this.#inflight]);
  }

  async #export(batch: FinishedSpan[]): Promise<void> {
    const url = this.#o.target();
    if (url === undefined) {
      this.stats.dropped += batch.length;
      return;
    }
    const s = await loadSdk();
    let exporter = this.#exporters.get(url);
    if (exporter === undefined) {
      exporter = s.makeExporter(this.#o.protocol, url, { ...(this.#o.headers ?? {}) }, this.#o.timeoutMs ?? 5000);
      this.#exporters.set(url, exporter);
    }
    const resource = s.resource(this.#o.resource);
    const spans = batch.map((x) => readable(x, resource));
    await new Promise<void>((resolve) => {
      try {
        exporter.export(spans, (r) => {
          if (r.code === 0) this.stats.sent += spans.length;
          else {
            this.stats.failedExports++;
            this.stats.dropped += spans.length;
          }
          resolve();
        });
      } catch {
        this.stats.failedExports++;
        this.stats.dropped += spans.length;
        resolve();
      }
    });
  }

  /** Flushes and stops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.flush();
    this.#closed = true;
    await Promise.all([...this.#exporters.values()].map((e) => e.shutdown().catch(() => {})));
  }
}
