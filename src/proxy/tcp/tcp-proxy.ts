/**
 * The TCP proxy network filter (`envoy.filters.network.tcp_proxy`): connects each downstream
 * connection to an endpoint of one cluster (or of weighted clusters) and copies bytes both ways,
 * honouring half-close, an idle timeout (Envoy's default 1 h) and connect failures (the
 * downstream connection is closed). Also used for TLS passthrough, where the sniffed ClientHello
 * bytes are still in the downstream socket's buffer and are forwarded untouched.
 *
 * Istio's TCP metadata exchange runs here too, on whichever side negotiated it (the downstream of a
 * server sidecar's mTLS chain, the upstream of a client sidecar's cluster): this proxy's prefix is
 * written first, and the peer's prefix is stripped from the first bytes it sends before the rest
 * is forwarded; the meter hears who the peer is (telemetry/peer-exchange.ts has the wire format).
 */
import { AccessLogs } from '../access-log/access-logs.ts';
import { LogFiles } from '../access-log/log-files.ts';
import { describeError } from '../../errors.ts';
import type { Duplex } from 'node:stream';
import { PeerExchangeReader } from '../../telemetry/peer-exchange.ts';
import type { XdsJson } from '../../xds/types.ts';
import type { ClusterManager } from '../upstream/types.ts';
import { child, configError, isObj, optArr, optDurationMs, optObj, optStr, optUint } from '../xds-json.ts';


export interface TcpProxyConfig {
  readonly statPrefix: string;
  /** Single cluster, or weighted clusters (picked per connection). */
  readonly clusters: readonly { name: string; weight: number }[];
  readonly totalWeight: number;
  readonly idleTimeoutMs: number;
  /** `access_log` as configured (validated here, compiled by the data plane with its log files). */
  readonly accessLog: readonly unknown[] | undefined;
}

export interface TcpProxyStats {
  cxTotal: number;
  cxActive: number;
  cxConnectFail: number;
  rxBytes: number;
  txBytes: number;
}

/** Parses TcpProxy typed config. */
export function parseTcpProxy(json: XdsJson, at: string): TcpProxyConfig {
  const statPrefix = optStr(json.stat_prefix, child(at, 'stat_prefix')) ?? 'tcp';
  const cluster = optStr(json.cluster, child(at, 'cluster'));
  const weighted = optObj(json.weighted_clusters, child(at, 'weighted_clusters'));
  const clusters: { name: string; weight: number }[] = [];
  if (cluster !== undefined && cluster !== '') clusters.push({ name: cluster, weight: 1 });
  else if (weighted !== undefined) {
    optArr(weighted.clusters, child(child(at, 'weighted_clusters'), 'clusters')).forEach((c, i) => {
      const p = child(child(at, 'weighted_clusters.clusters'), i);
      if (!isObj(c)) configError(p, 'expected an object');
      const name = optStr(c.name, child(p, 'name'));
      if (!name) configError(child(p, 'name'), 'required');
      clusters.push({ name, weight: optUint(c.weight, child(p, 'weight')) ?? 1 });
    });
  }
  if (clusters.length === 0) configError(at, 'tcp_proxy needs cluster or weighted_clusters');
  // Envoy's default idle timeout is 1 hour; 0 disables it.
  const idle = optDurationMs(json.idle_timeout, child(at, 'idle_timeout'));
  if (Array.isArray(json.access_log) && json.access_log.length > 0) {
    try {
      AccessLogs.parse(json.access_log, 'access_log', new LogFiles());
    } catch (err) {
      configError(child(at, 'access_log'), describeError(err));
    }
  }
  return Object.freeze({
    statPrefix,
    clusters: Object.freeze(clusters),
    totalWeight: clusters.reduce((s, c) => s + c.weight, 0),
    idleTimeoutMs: idle ?? 3_600_000,
    // Compiled by whoever logs connections (the data plane), with its log files.
    accessLog: Array.isArray(json.access_log) && json.access_log.length > 0 ? json.access_log : undefined,
  });
}

export function newTcpProxyStats(): TcpProxyStats {
  return { cxTotal: 0, cxActive: 0, cxConnectFail: 0, rxBytes: 0, txBytes: 0 };
}

/** Observes one proxied connection (Istio's TCP metrics): bytes each way, then the close. */
export interface TcpMeter {
  /** Bytes read from the downstream (Istio: received). */
  received(n: number): void;
  /** Bytes written to the downstream (Istio: sent). */
  sent(n: number): void;
  /** The connection is over; `flags` is Envoy's response flags (`UF` connect failure, `-` none). */
  closed(flags: string): void;
  /** The upstream connection is up, to `endpoint` (`host:port`), whose mTLS certificate proved `peerPrincipal`. */
  connected?(endpoint: string, peerPrincipal: string | undefined): void;
  /**
   * The metadata exchange with the peer on `side` is over: the peer's prefix payload, or undefined
   * when there was none (not negotiated, no prefix, connection over first). Called once per side,
   * the upstream side only once connected.
   */
  exchanged?(side: 'downstream' | 'upstream', payload: Buffer | undefined): void;
}

/** Istio's TCP metadata exchange for one connection. */
export interface TcpPeerExchange {
  /** This proxy's prefix (telemetry/peer-exchange.ts). */
  readonly prefix: Buffer;
  /** The downstream negotiated the exchange (the chain's filter, and its ALPN protocol selected). */
  readonly downstream: boolean;
}

/** Proxies one downstream connection; resolves when both sides are closed. Never throws. */
export async function proxyTcp(
  downstream: Duplex,
  cfg: TcpProxyConfig,
  clusters: ClusterManager,
  stats: TcpProxyStats,
  random: () => number = Math.random,
  authority = '',
  meterFor?: (cluster: string) => TcpMeter | undefined,
  originalDestination?: { address: string; port: number },
  exchange?: TcpPeerExchange,
): Promise<void> {
  stats.cxTotal++;
  stats.cxActive++;
  downstream.on('error', () => {});
  // Half-close as Envoy: a peer's FIN is forwarded and the other direction keeps flowing (sockets
  // end their own writing side on a FIN unless allowed half open; the flag is read when it comes).
  halfOpen(downstream);
  // Our prefix goes out at once (Istio's filter writes it on the first byte either way; the peer
  // reads it whenever it comes), so a server-speaks-first protocol cannot wait on it.
  const downExchange = exchange?.downstream === true;
  if (downExchange) downstream.write(exchange!.prefix);
  const abort = new AbortController();
  const onDownClose = () => abort.abort();
  downstream.once('close', onDownClose);
  let meter: TcpMeter | undefined;
  try {
    let pick = random() * cfg.totalWeight;
    let clusterName = cfg.clusters[0].name;
    for (const c of cfg.clusters) {
      if (pick < c.weight) {
        clusterName = c.name;
        break;
      }
      pick -= c.weight;
    }
    meter = meterFor?.(clusterName);
    if (!downExchange) meter?.exchanged?.('downstream', undefined);
    const cluster = clusters.get(clusterName);
    if (cluster === undefined) {
      stats.cxConnectFail++;
      meter?.closed('NC');
      downstream.destroy();
      return;
    }
    let upstream: Duplex;
    let upExchange = false;
    try {
      const c = await cluster.connect({ signal: abort.signal, authority, ...(originalDestination !== undefined ? { originalDestination } : {}) });
      upstream = c.socket;
      halfOpen(upstream);
      upExchange = c.peerExchange === true && exchange !== undefined;
      meter?.connected?.(c.endpoint, c.peerPrincipal);
      if (upExchange) upstream.write(exchange!.prefix);
      else meter?.exchanged?.('upstream', undefined);
    } catch {
      stats.cxConnectFail++;
      meter?.closed('UF');
      downstream.destroy();
      return;
    }
    if (downstream.destroyed) {
      upstream.destroy();
      meter?.closed('DC');
      return;
    }
    await pipeBoth(downstream, upstream, cfg.idleTimeoutMs, stats, meter, downExchange, upExchange);
    meter?.closed('-');
  } finally {
    downstream.off('close', onDownClose);
    stats.cxActive--;
  }
}

/** How long a side whose peer closed may take to flush what it holds before it is closed too. */
const FlushTimeoutMs = 5_000;

function halfOpen(s: Duplex): void {
  s.allowHalfOpen = true;
}

/**
 * Strips a peer's exchange prefix from the first chunks of one direction: returns the bytes to
 * forward (undefined while the prefix is incomplete), and tells `settled` the outcome once.
 */
function prefixStripper(settled: (payload: Buffer | undefined) => void): { data(chunk: Buffer): Buffer | undefined; end(): Buffer } {
  let reader: PeerExchangeReader | undefined = new PeerExchangeReader();
  return {
    data(chunk) {
      if (reader === undefined) return chunk;
      const step = reader.push(chunk);
      if (step.state === 'more') return undefined;
      reader = undefined;
      settled(step.state === 'done' ? step.payload : undefined);
      return step.state === 'done' ? step.rest : step.bytes;
    },
    end() {
      if (reader === undefined) return Buffer.alloc(0);
      const rest = reader.end();
      reader = undefined;
      settled(undefined);
      return rest;
    },
  };
}

function pipeBoth(down: Duplex, up: Duplex, idleMs: number, stats: TcpProxyStats, meter: TcpMeter | undefined, downExchange: boolean, upExchange: boolean): Promise<void> {
  return new Promise((resolve) => {
    const fromDown = downExchange ? prefixStripper((p) => meter?.exchanged?.('downstream', p)) : undefined;
    const fromUp = upExchange ? prefixStripper((p) => meter?.exchanged?.('upstream', p)) : undefined;
    let closed = 0;
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      if (idleMs <= 0) return;
      clearTimeout(idle);
      idle = setTimeout(() => {
        down.destroy();
        up.destroy();
      }, idleMs);
      idle.unref?.();
    };
    const onClose = (other: Duplex) => (hadError: boolean) => {
      if (++closed === 2) {
        clearTimeout(idle);
        resolve();
      } else if (hadError) {
        // Reset: the other side cannot make progress either.
        down.destroy();
        up.destroy();
      } else {
        // Closed cleanly: as Envoy's FlushWrite close, the other side first gets what is still on
        // its way to it (a TLS socket's writes are asynchronous), then its FIN; bounded in time.
        const flushed = () => other.destroy();
        if (other.writableFinished) return flushed();
        other.end();
        other.once('finish', flushed);
        setTimeout(flushed, FlushTimeoutMs).unref();
      }
    };
    up.on('error', () => {});
    down.on('data', (raw: Buffer) => {
      touch();
      const chunk = fromDown === undefined ? raw : fromDown.data(raw);
      if (chunk === undefined || chunk.length === 0) return;
      stats.rxBytes += chunk.length;
      meter?.received(chunk.length);
      if (!up.write(chunk)) down.pause();
    });
    up.on('drain', () => down.resume());
    up.on('data', (raw: Buffer) => {
      touch();
      const chunk = fromUp === undefined ? raw : fromUp.data(raw);
      if (chunk === undefined || chunk.length === 0) return;
      stats.txBytes += chunk.length;
      meter?.sent(chunk.length);
      if (!down.write(chunk)) up.pause();
    });
    down.on('drain', () => up.resume());
    // Half-close: forward FIN each way (with whatever an unfinished exchange held back).
    down.on('end', () => {
      const rest = fromDown?.end();
      if (rest !== undefined && rest.length > 0) up.write(rest);
      up.end();
    });
    up.on('end', () => {
      const rest = fromUp?.end();
      if (rest !== undefined && rest.length > 0) down.write(rest);
      down.end();
    });
    down.once('close', onClose(up));
    up.once('close', onClose(down));
    touch();
    down.resume();
  });
}
