/**
 * Envoy's HTTP connection manager counters (`http.<stat_prefix>.downstream_rq_total`,
 * `downstream_rq_2xx`...) collected from the `trellis:http:request-end` channel, so the admin
 * `/stats` endpoint shows per-listener request counts without the HTTP engine knowing about it.
 * Istio's standard metrics (istio_requests_total...) come with the telemetry issue through the
 * same channel.
 */
import { requestEndChannel, type StreamInfo } from './http/stream-info.ts';
import { HcmCounterNames, newHcmCounters, type HcmCounters } from './http/hcm-stats.ts';
import type { Stat } from './admin/stats-format.ts';

interface Counters {
  total: number;
  byClass: [number, number, number, number, number];
  responseFlags: Map<string, number>;
}

export class HttpStats {
  readonly #byPrefix = new Map<string, Counters>();
  readonly #hcm = new Map<string, HcmCounters>();
  #listener: ((msg: unknown) => void) | undefined;

  /** The connection managers' own counters for a stat prefix (shared by every manager with it, as in Envoy). */
  countersFor(prefix: string): HcmCounters {
    let c = this.#hcm.get(prefix);
    if (c === undefined) this.#hcm.set(prefix, (c = newHcmCounters()));
    return c;
  }

  subscribe(): void {
    if (this.#listener) return;
    this.#listener = (msg) => this.record(msg as StreamInfo);
    requestEndChannel.subscribe(this.#listener);
  }

  unsubscribe(): void {
    if (this.#listener) requestEndChannel.unsubscribe(this.#listener);
    this.#listener = undefined;
  }

  record(info: StreamInfo): void {
    let c = this.#byPrefix.get(info.statPrefix);
    if (c === undefined) {
      c = { total: 0, byClass: [0, 0, 0, 0, 0], responseFlags: new Map() };
      this.#byPrefix.set(info.statPrefix, c);
    }
    c.total++;
    const cls = Math.floor(info.responseCode / 100);
    if (cls >= 1 && cls <= 5) c.byClass[cls - 1]++;
    // Most requests end without a flag: no iterator (and its results) for an empty set.
    if (info.responseFlags.size > 0) for (const f of info.responseFlags) c.responseFlags.set(f, (c.responseFlags.get(f) ?? 0) + 1);
  }

  stats(): Stat[] {
    const out: Stat[] = [];
    for (const [prefix, c] of this.#byPrefix) {
      const labels = { envoy_http_conn_manager_prefix: prefix };
      out.push({ name: `http.${prefix}.downstream_rq_total`, value: c.total, type: 'counter', family: 'http.downstream_rq_total', labels });
      c.byClass.forEach((v, i) => {
        out.push({ name: `http.${prefix}.downstream_rq_${i + 1}xx`, value: v, type: 'counter', family: 'http.downstream_rq_xx', labels: { ...labels, envoy_response_code_class: String(i + 1) } });
      });
      for (const [flag, v] of c.responseFlags) {
        out.push({ name: `http.${prefix}.response_flags.${flag}`, value: v, type: 'counter', family: 'http.response_flags', labels: { ...labels, response_flag: flag } });
      }
    }
    for (const [prefix, c] of this.#hcm) {
      const labels = { envoy_http_conn_manager_prefix: prefix };
      for (const name of HcmCounterNames) out.push({ name: `http.${prefix}.${name}`, value: c[name], type: 'counter', family: `http.${name}`, labels });
    }
    return out;
  }
}
