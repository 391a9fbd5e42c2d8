/**
 * Proxy status as the xDS server sees it, per connected proxy and per type: SYNCED (the last
 * version sent was ACKed), STALE (sent, no ACK yet), NACKED (the proxy rejected a version: with
 * its error message and the rejected version; the proxy keeps running the last ACKed one) and
 * NOT SENT. Plus the counters `/metrics` exposes. The server writes, the debug HTTP server and
 * `trellis proxy-status` read (`/debug/syncz`). Kept as plain JSON-ready data.
 */
import type { ProxyNode } from '../proxy-node.ts';
import { shortTypeName } from './resources.ts';

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT';

/** One type's state for one proxy. */
export interface TypeStatus {
  typeUrl: string;
  state: SyncState;
  /** Subscribed names; undefined means wildcard. */
  resourceNames?: readonly string[];
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: string;
  sentCount?: number;
  ackedVersion?: string;
  lastAckAt?: string;
  nackError?: string;
  nackVersion?: string;
  lastNackAt?: string;
}

/** One connected proxy (one ADS stream). */
export interface ProxyStatus {
  /** Node id. */
  id: string;
  /** Unique per stream (a proxy that reconnects gets a new one). */
  connectionId: string;
  mode: 'sotw' | 'delta';
  peer: string;
  connectedAt: string;
  node: { id: string; cluster?: string; user_agent_name?: string; metadata?: Record<string, unknown> };
  proxy?: ProxyNode;
  /** By short type name (CDS, LDS, EDS, RDS, SDS...). */
  types: Record<string, TypeStatus>;
  /** Resources of this proxy's last generated set that failed to encode or are inconsistent. */
  problems: string[];
}

/** Prometheus-style counters. */
export interface XdsCounters {
  pushes: Record<string, number>;
  nacks: Record<string, number>;
  pushTriggers: number;
  generateErrors: number;
  connectionsTotal: number;
}

/** Mutable store of the above, written by the server's connections. */
export class StatusTracker {
  readonly #proxies = new Map<string, ProxyStatus>();
  readonly counters: XdsCounters = { pushes: {}, nacks: {}, pushTriggers: 0, generateErrors: 0, connectionsTotal: 0 };

  connect(s: Omit<ProxyStatus, 'types' | 'problems'>): ProxyStatus {
    const full: ProxyStatus = { ...s, types: {}, problems: [] };
    this.#proxies.set(s.connectionId, full);
    this.counters.connectionsTotal++;
    return full;
  }

  disconnect(connectionId: string): void {
    this.#proxies.delete(connectionId);
  }

  #type(connectionId: string, typeUrl: string): TypeStatus | undefined {
    const p = this.#proxies.get(connectionId);
    if (p === undefined) return undefined;
    const key = shortTypeName(typeUrl);
    p.types[key] ??= { typeUrl, state: 'NOT SENT' };
    return p.types[key];
  }

  subscribed(connectionId: string, typeUrl: string, names: readonly string[] | undefined): void {
    const t = this.#type(connectionId, typeUrl);
    // Kept by reference (callers pass a frozen list shared by streams alike); list() copies rows.
    if (t !== undefined) t.resourceNames = names;
  }

  sent(connectionId: string, typeUrl: string, version: string, nonce: string, count: number): void {
    const key = shortTypeName(typeUrl);
    this.counters.pushes[key] = (this.counters.pushes[key] ?? 0) + 1;
    const t = this.#type(connectionId, typeUrl);
    if (t === undefined) return;
    Object.assign(t, { sentVersion: version, sentNonce: nonce, sentAt: new Date().toISOString(), sentCount: count });
    t.state = t.ackedVersion === version ? 'SYNCED' : 'STALE';
  }

  acked(connectionId: string, typeUrl: string, version: string): void {
    const t = this.#type(connectionId, typeUrl);
    if (t === undefined) return;
    t.ackedVersion = version;
    t.lastAckAt = new Date().toISOString();
    t.state = t.sentVersion === version ? 'SYNCED' : 'STALE';
  }

  nacked(connectionId: string, typeUrl: string, rejectedVersion: string, message: string): void {
    const key = shortTypeName(typeUrl);
    this.counters.nacks[key] = (this.counters.nacks[key] ?? 0) + 1;
    const t = this.#type(connectionId, typeUrl);
    if (t === undefined) return;
    Object.assign(t, { state: 'NACKED', nackError: message, nackVersion: rejectedVersion, lastNackAt: new Date().toISOString() });
  }

  problems(connectionId: string, problems: readonly string[]): void {
    const p = this.#proxies.get(connectionId);
    if (p !== undefined) p.problems = [...problems];
  }

  /** Every connected proxy, sorted by node id (copies: callers cannot change the live rows). */
  list(): ProxyStatus[] {
    return [...this.#proxies.values()].map((p) => structuredClone(p)).sort((a, b) => a.id.localeCompare(b.id) || a.connectedAt.localeCompare(b.connectedAt));
  }

  get(connectionId: string): ProxyStatus | undefined {
    return this.#proxies.get(connectionId);
  }

  get connected(): number {
    return this.#proxies.size;
  }
}
