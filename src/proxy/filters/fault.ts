/**
 * The fault injection filter (`envoy.filters.http.fault`, envoy.extensions.filters.http.fault.v3.HTTPFault):
 * delays (fixed_delay, or header-controlled x-envoy-fault-delay-request) and aborts (http_status /
 * grpc_status, or header-controlled x-envoy-fault-abort-request / -grpc-request), each sampled by
 * its percentage with the injected random source, limited to requests matching `headers` and
 * (when set) routed to `upstream_cluster`, and capped by max_active_faults. Delay first, then
 * abort, as Envoy. Sets response flags DI (delay injected) and FI (fault abort injected).
 * A route's typed_per_filter_config HTTPFault replaces the filter-level config for that route.
 */
import {
  configError, fractionalPercent, optArr, optDurationMs, optObj, optStr, optUint, type Json,
} from '../xds-json.ts';
import type { FilterRegistration, FilterStatus, HttpFilter, HttpStream } from '../http/stream.ts';
import { compileHeaderMatcher, type HeaderMatch } from '../http/matchers.ts';
import { LocalReplyBody } from '../http/stream-info.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

/** A compiled HTTPFault. */
export interface FaultConfig {
  readonly delayMs: number | undefined;
  readonly delayFromHeader: boolean;
  readonly delayFraction: number;
  readonly abortStatus: number | undefined;
  readonly abortGrpcStatus: number | undefined;
  readonly abortFromHeader: boolean;
  readonly abortFraction: number;
  readonly headers: readonly HeaderMatch[];
  readonly upstreamCluster: string | undefined;
  readonly maxActiveFaults: number | undefined;
}

/** Compile an HTTPFault typed config. */
export function compileFault(o: Json, path: string): FaultConfig {
  const d = optObj(o.delay, `${path}.delay`);
  const ab = optObj(o.abort, `${path}.abort`);
  const abortStatus = ab ? optUint(ab.http_status, `${path}.abort.http_status`) : undefined;
  if (abortStatus !== undefined && (abortStatus < 200 || abortStatus > 599)) configError(`${path}.abort.http_status`, 'must be in [200, 599]');
  const abortGrpcStatus = ab ? optUint(ab.grpc_status, `${path}.abort.grpc_status`) : undefined;
  const abortFromHeader = !!ab && ab.header_abort !== undefined;
  if (ab && abortStatus === undefined && abortGrpcStatus === undefined && !abortFromHeader) configError(`${path}.abort`, 'one of http_status, grpc_status, header_abort is required');
  const delayMs = d ? optDurationMs(d.fixed_delay, `${path}.delay.fixed_delay`) : undefined;
  const delayFromHeader = !!d && d.header_delay !== undefined;
  if (d && delayMs === undefined && !delayFromHeader) configError(`${path}.delay`, 'fixed_delay or header_delay is required');
  return Object.freeze({
    delayMs, delayFromHeader,
    delayFraction: d ? fractionalPercent(d.percentage, `${path}.delay.percentage`) : 0,
    abortStatus, abortGrpcStatus, abortFromHeader,
    abortFraction: ab ? fractionalPercent(ab.percentage, `${path}.abort.percentage`) : 0,
    headers: Object.freeze(optArr(o.headers, `${path}.headers`).map((h, i) => compileHeaderMatcher(h, `${path}.headers[${i}]`))),
    upstreamCluster: optStr(o.upstream_cluster, `${path}.upstream_cluster`),
    maxActiveFaults: optUint(o.max_active_faults, `${path}.max_active_faults`),
  });
}

function headerNum(s: HttpStream, name: string): number | undefined {
  const v = s.headers[name];
  const str = Array.isArray(v) ? v[0] : v;
  return str !== undefined && /^\d+$/.test(str) ? Number(str) : undefined;
}

/** Registration of the fault filter. */
export const faultFilter: FilterRegistration = {
  name: 'envoy.filters.http.fault',
  typeUrls: [TYPE],
  parsePerRoute: (raw, path) => compileFault(raw, path),
  createFactory(typedConfig, ctx, path, configuredName) {
    const shared: FaultShared = { base: compileFault(typedConfig, path), name: configuredName, random: ctx.random, active: 0, counted: new WeakSet() };
    // The filter keeps no state in itself (what a stream's fault counts is in `shared.counted`):
    // one object serves every stream.
    const filter = new FaultFilter(shared);
    return {
      name: configuredName,
      terminal: false,
      createFilter: () => filter,
    };
  },
};

/** Per configured filter: its config, name, random source and the active fault count (max_active_faults). */
interface FaultShared {
  readonly base: FaultConfig;
  readonly name: string;
  readonly random: () => number;
  active: number;
  /** The streams a fault of this filter is active on, counted in `active` until they complete (faults are rare: no field per stream). */
  readonly counted: WeakSet<HttpStream>;
}

/** The fault filter of every stream of one configured filter: synchronous unless it delays the request. */
class FaultFilter implements HttpFilter {
  readonly #f: FaultShared;

  constructor(f: FaultShared) {
    this.#f = f;
  }

  onRequestHeaders(s: HttpStream): FilterStatus | Promise<FilterStatus> {
    const f = this.#f;
    const cfg = (s.perFilterConfig(f.name) as FaultConfig | undefined) ?? f.base;
    // An index loop: `for...of` cost an iterator per request where this code is not optimized.
    const headers = cfg.headers;
    for (let i = 0; i < headers.length; i++) if (!headers[i](s)) return 'continue';
    if (cfg.upstreamCluster !== undefined) {
      const a = s.route?.action;
      if (!a || a.kind !== 'route' || a.cluster !== cfg.upstreamCluster) return 'continue';
    }
    if (cfg.maxActiveFaults !== undefined && f.active >= cfg.maxActiveFaults) return 'continue';
    const delay = cfg.delayFromHeader ? headerNum(s, 'x-envoy-fault-delay-request') : cfg.delayMs;
    const delayFraction = cfg.delayFromHeader ? Math.min(1, (headerNum(s, 'x-envoy-fault-delay-request-percentage') ?? 100) / 100) * cfg.delayFraction : cfg.delayFraction;
    if (delay !== undefined && delay > 0 && f.random() < delayFraction) {
      f.active++;
      f.counted.add(s);
      s.info.responseFlags.add('DI');
      return this.#delayThenAbort(s, cfg, delay);
    }
    return this.#abort(s, cfg);
  }

  async #delayThenAbort(s: HttpStream, cfg: FaultConfig, delay: number): Promise<FilterStatus> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, delay);
      s.downstreamSignal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
    if (s.downstreamSignal.aborted) return 'stop';
    return this.#abort(s, cfg);
  }

  #abort(s: HttpStream, cfg: FaultConfig): FilterStatus {
    const f = this.#f;
    let status = cfg.abortStatus;
    let grpcStatus = cfg.abortGrpcStatus;
    if (cfg.abortFromHeader) {
      status = headerNum(s, 'x-envoy-fault-abort-request');
      grpcStatus = headerNum(s, 'x-envoy-fault-abort-grpc-request');
    }
    const abortFraction = cfg.abortFromHeader ? Math.min(1, (headerNum(s, 'x-envoy-fault-abort-request-percentage') ?? 100) / 100) * cfg.abortFraction : cfg.abortFraction;
    if ((status !== undefined || grpcStatus !== undefined) && f.random() < abortFraction) {
      if (!f.counted.has(s)) {
        f.active++;
        f.counted.add(s);
      }
      if (grpcStatus !== undefined && s.grpc) s.sendLocalReply(200, LocalReplyBody.faultAbort, { flag: 'FI', details: 'fault_filter_abort', grpcStatus });
      else s.sendLocalReply(status ?? 500, LocalReplyBody.faultAbort, { flag: 'FI', details: 'fault_filter_abort' });
      return 'stop';
    }
    return 'continue';
  }

  onStreamComplete(s: HttpStream): void {
    if (this.#f.counted.delete(s)) this.#f.active--;
  }
}
