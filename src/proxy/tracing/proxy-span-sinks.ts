/**
 * The span queues of one proxy process, one per (provider, service name), shared by every
 * connection manager and kept across config updates (a listener update must not drop queued
 * spans or open a new exporter). Batches go to an endpoint of the provider's collector cluster,
 * round robin over its healthy hosts, as Envoy sends tracer traffic through that cluster; the
 * configured URI's authority is the fallback when the cluster has no endpoint.
 */
import { SpanSink, type SpanSinkStats } from '../../telemetry/span-exporter.ts';
import type { SpanSinks } from './http-tracer.ts';
import type { TracingProvider } from './tracing-config.ts';

export class ProxySpanSinks implements SpanSinks {
  readonly #sinks = new Map<string, SpanSink>();
  readonly #hostsOf: (cluster: string) => readonly string[];
  #next = 0;

  /** `hostsOf`: the healthy endpoints (`host:port`) of a cluster. */
  constructor(hostsOf: (cluster: string) => readonly string[]) {
    this.#hostsOf = hostsOf;
  }

  sink(p: TracingProvider, serviceName: string): SpanSink {
    const key = JSON.stringify([p, serviceName]);
    let s = this.#sinks.get(key);
    if (s === undefined) {
      s = new SpanSink({
        protocol: p.protocol,
        target: () => {
          const hosts = this.#hostsOf(p.cluster);
          const host = hosts.length > 0 ? hosts[this.#next++ % hosts.length] : p.fallbackAuthority;
          return host === undefined ? undefined : `http://${host}${p.path}`;
        },
        resource: { 'service.name': serviceName },
        headers: p.headers,
        timeoutMs: p.timeoutMs,
      });
      this.#sinks.set(key, s);
    }
    return s;
  }

  /** Envoy-style counters summed over the queues (tracing.* on /stats). */
  stats(): SpanSinkStats {
    const out: SpanSinkStats = { sent: 0, dropped: 0, failedExports: 0 };
    for (const s of this.#sinks.values()) {
      out.sent += s.stats.sent;
      out.dropped += s.stats.dropped;
      out.failedExports += s.stats.failedExports;
    }
    return out;
  }

  /** Sends what is queued now. */
  async flush(): Promise<void> {
    await Promise.all([...this.#sinks.values()].map((s) => s.flush()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#sinks.values()].map((s) => s.close()));
  }
}
