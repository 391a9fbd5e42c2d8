/**
 * Owns the proxy's listening sockets. `apply()` takes the complete LDS state: every listener is
 * compiled first (any error rejects the whole update, nothing changes), then new listeners are
 * bound (a bind failure rolls back what this update bound and rejects it), changed listeners
 * switch to their new filter chains for new connections while existing connections drain, and
 * removed listeners stop accepting and drain. Each accepted connection goes through listener
 * filters (sniffing when a chain needs SNI/ALPN/transport, or to tell HTTP/1.1 from h2c), filter
 * chain selection, optional TLS termination, then the HTTP connection manager or the TCP proxy.
 * A `use_original_dst` listener (transparent capture, 15001/15006) hands each connection to the
 * listener bound, or not bound (`bind_to_port: false`), for its original destination.
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { XdsJson } from '../../xds/types.ts';
import type { ClusterManager } from '../upstream/types.ts';
import type { SecretProvider } from '../tls/secret-provider.ts';
import { TrellisError, describeError } from '../../errors.ts';
import { compileListener, type CompiledChain, type CompiledListener, type HcmFactory, type HttpConnectionHandler } from './listener-config.ts';
import { needsTlsInspection, selectFilterChain, type ConnectionFacts } from './filter-chain-match.ts';
import { sniffProtocol, type SniffedProtocol } from './sniff.ts';
import { terminateTls } from './downstream-tls.ts';
import { destroyOnError } from '../socket-handlers.ts';
import { newTcpProxyStats, proxyTcp, type TcpMeter, type TcpProxyConfig, type TcpProxyStats } from '../tcp/tcp-proxy.ts';
import { admitConnection, connectionRbacInput } from '../filters/rbac/rbac-network.ts';
import { admitByAuthorizer } from '../filters/ext-authz/ext-authz-network.ts';

export interface ListenerManagerOptions {
  clusters: ClusterManager;
  secrets: SecretProvider;
  hcmFactory: HcmFactory;
  /** How long to wait for a client's first bytes before treating it as opaque TCP (Istio: protocol detection timeout). */
  sniffTimeoutMs?: number;
  /** How long draining connections may live after their listener changed or was removed. */
  drainTimeoutMs?: number;
  /** Recovers a redirected connection's original destination (SO_ORIGINAL_DST); undefined when unavailable. */
  originalDestination?: (socket: net.Socket) => { ip: string; port: number } | undefined;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  random?: () => number;
  /** Bind with SO_REUSEPORT, each worker its own socket (ports must be concrete, not 0). */
  reusePort?: boolean;
  /** A meter for each TCP-proxied connection (Istio's TCP metrics), given its listener, cluster and downstream. */
  tcpMeter?: (listener: CompiledListener, cluster: string, downstream: net.Socket, tcp: TcpProxyConfig) => TcpMeter | undefined;
  /** This proxy's Istio TCP metadata exchange prefix; without it no exchange runs (chains and clusters that ask for one proxy as if it was not negotiated). */
  peerExchangePrefix?: Buffer;
}

interface ActiveListener {
  compiled: CompiledListener;
  server: net.Server | undefined;
  connections: Set<net.Socket>;
  stats: ListenerStats;
}

export interface ListenerStats {
  downstreamCxTotal: number;
  downstreamCxActive: number;
  noFilterChainMatch: number;
  tlsHandshakeFailures: number;
  /** Connections a network RBAC filter refused. */
  rbacDenied: number;
  tcp: TcpProxyStats;
}

function newStats(): ListenerStats {
  return { downstreamCxTotal: 0, downstreamCxActive: 0, noFilterChainMatch: 0, tlsHandshakeFailures: 0, rbacDenied: 0, tcp: newTcpProxyStats() };
}

/** The HTTP connection managers of a listener's chains (default chain included). */
function httpHandlers(c: CompiledListener): HttpConnectionHandler[] {
  return [...c.chains, ...(c.defaultChain ? [c.defaultChain] : [])].flatMap((ch) => (ch.action.kind === 'http' ? [ch.action.hcm] : []));
}

const kListener = Symbol('trellis.listener');
type ListenerSocket = net.Socket & { [kListener]?: ActiveListener };

// Shared handlers (`this` is the socket): an idle connection costs no closures of its own.
function forgetConnection(this: ListenerSocket): void {
  const l = this[kListener];
  if (l === undefined) return;
  this[kListener] = undefined;
  l.connections.delete(this);
  l.stats.downstreamCxActive--;
}

/** Where a listener is reachable, by `ip:port` (and `0.0.0.0:port` / `[::]:port` wildcards). */
function key(host: string, port: number): string {
  return `${host}:${port}`;
}

export class ListenerManager {
  readonly #opts: ListenerManagerOptions;
  readonly #active = new Map<string, ActiveListener>();
  readonly #draining = new Set<ActiveListener>();
  #closed = false;

  constructor(opts: ListenerManagerOptions) {
    this.#opts = opts;
  }

  /** Names, addresses and stats of the current listeners (for admin). */
  list(): { name: string; address: string; bound: boolean; port: number; stats: ListenerStats; json: XdsJson }[] {
    return [...this.#active.values()].map((a) => ({
      name: a.compiled.name,
      address: key(a.compiled.host, this.boundPort(a.compiled.name) ?? a.compiled.port),
      bound: a.server !== undefined,
      port: this.boundPort(a.compiled.name) ?? a.compiled.port,
      stats: a.stats,
      json: a.compiled.json,
    }));
  }

  /** The port a listener actually bound (differs from config only for port 0). */
  boundPort(name: string): number | undefined {
    const a = this.#active.get(name);
    const addr = a?.server?.address();
    return addr && typeof addr === 'object' ? addr.port : undefined;
  }

  /** Applies the complete set of listeners (LDS state of the world). Throws to reject (NACK). */
  async apply(listeners: ReadonlyMap<string, XdsJson>): Promise<void> {
    if (this.#closed) throw new TrellisError('PROXY_CLOSED', 'listener manager is closed');
    const compiled = new Map<string, CompiledListener>();
    const errors: string[] = [];
    for (const [name, json] of listeners) {
      const prev = this.#active.get(name);
      if (prev && prev.compiled.json === json) {
        compiled.set(name, prev.compiled);
        continue;
      }
      try {
        const c = compileListener(json, this.#opts.hcmFactory);
        compiled.set(name, prev && prev.compiled.fingerprint === c.fingerprint ? prev.compiled : c);
      } catch (err) {
        errors.push(describeError(err));
      }
    }
    if (errors.length > 0) throw new TrellisError('XDS_INVALID', errors.join('; '));

    // Bind what is new or moved, before touching anything that serves traffic.
    const bound: { name: string; server: net.Server }[] = [];
    try {
      for (const [name, c] of compiled) {
        const prev = this.#active.get(name);
        if (!c.bindToPort) continue;
        if (prev && prev.server && prev.compiled.host === c.host && prev.compiled.port === c.port) continue;
        bound.push({ name, server: await this.#bind(c) });
      }
    } catch (err) {
      for (const b of bound) b.server.close();
      throw err;
    }
    const newServers = new Map(bound.map((b) => [b.name, b.server]));

    for (const [name, c] of compiled) {
      const prev = this.#active.get(name);
      if (prev && prev.compiled === c) continue;
      if (prev === undefined) {
        const entry: ActiveListener = { compiled: c, server: newServers.get(name), connections: new Set(), stats: newStats() };
        this.#active.set(name, entry);
        this.#attach(entry);
        continue;
      }
      // Changed: new connections see the new chains; the old generation drains.
      const keepServer = !newServers.has(name) && c.bindToPort ? prev.server : newServers.get(name);
      const next: ActiveListener = { compiled: c, server: keepServer, connections: new Set(), stats: prev.stats };
      if (keepServer !== prev.server) {
        prev.server?.close();
      } else {
        prev.server = undefined;
      }
      this.#active.set(name, next);
      this.#attach(next);
      this.#drain(prev, false);
    }
    for (const [name, prev] of [...this.#active]) {
      if (compiled.has(name)) continue;
      this.#active.delete(name);
      prev.server?.close();
      prev.server = undefined;
      this.#drain(prev, true);
    }
  }

  #bind(c: CompiledListener): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ pauseOnConnect: true, noDelay: true });
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new TrellisError('LISTENER_BIND', `listener: cannot bind ${c.host}:${c.port}: ${err.code ?? err.message}`, { cause: err, context: { listener: c.name } }));
      });
      const reuse = this.#opts.reusePort === true && c.port !== 0;
      server.listen({ host: c.host, port: c.port, exclusive: reuse, reusePort: reuse }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.#opts.log?.('error', 'listener error', { listener: c.name, error: describeError(err) }));
        resolve(server);
      });
    });
  }

  #attach(entry: ActiveListener) {
    entry.server?.removeAllListeners('connection');
    entry.server?.on('connection', (socket: net.Socket) => this.#accept(entry, socket, false));
  }

  /** Hands a connection to the listener for its original destination, Envoy-style. */
  #handoff(from: ActiveListener, socket: net.Socket): ActiveListener {
    const dst = this.#opts.originalDestination?.(socket);
    if (dst === undefined) return from;
    const candidates = [key(dst.ip, dst.port), key('0.0.0.0', dst.port), key('::', dst.port)];
    for (const k of candidates) {
      for (const a of this.#active.values()) {
        if (a !== from && key(a.compiled.host, a.compiled.port) === k) return a;
      }
    }
    return from;
  }

  #accept(entry: ActiveListener, socket: net.Socket, handedOff: boolean) {
    socket.on('error', destroyOnError);
    let target = entry;
    if (!handedOff && entry.compiled.useOriginalDst) target = this.#handoff(entry, socket);
    target.connections.add(socket);
    target.stats.downstreamCxTotal++;
    target.stats.downstreamCxActive++;
    (socket as ListenerSocket)[kListener] = target;
    socket.on('close', forgetConnection);
    void this.#serve(target, socket, target !== entry).catch((err) => {
      this.#opts.log?.('warn', 'connection failed', { listener: target.compiled.name, error: describeError(err) });
      socket.destroy();
    });
  }

  async #serve(entry: ActiveListener, socket: net.Socket, handedOff: boolean): Promise<void> {
    const c = entry.compiled;
    const matches = c.chains.map((ch) => ch.match);
    // A handed-off connection keeps its restored destination (Envoy): the target listener's
    // chains (e.g. prefix_ranges of service VIPs) match the original destination, not 15001; one
    // no listener took over (virtualOutbound's catch-all) passes through to it.
    const dst = c.restoreOriginalDst || c.useOriginalDst || handedOff ? this.#opts.originalDestination?.(socket) : undefined;
    const facts: ConnectionFacts = {
      destinationPort: dst?.port ?? socket.localPort ?? 0,
      destinationIp: dst?.ip ?? socket.localAddress ?? '',
      sourceIp: socket.remoteAddress ?? '',
      sourcePort: socket.remotePort ?? 0,
      serverName: '',
      transportProtocol: 'raw_buffer',
      applicationProtocols: [],
    };
    let sniffed: SniffedProtocol | undefined;
    if (c.tlsInspector || c.httpInspector || needsTlsInspection(matches)) {
      // The short wait only helps where a silent (server-speaks-first) client has a chain to go to;
      // a listener whose every chain wants TLS waits for the ClientHello as Envoy's tls_inspector
      // does (listener_filters_timeout, 15 s), so a slow client is not turned away.
      const tlsOnly = c.defaultChain === undefined && c.chains.length > 0 && c.chains.every((ch) => ch.match?.transport_protocol === 'tls');
      sniffed = await sniffProtocol(socket, tlsOnly ? 15_000 : this.#opts.sniffTimeoutMs ?? 100);
      if (sniffed.transport === 'tls') {
        facts.transportProtocol = 'tls';
        facts.serverName = sniffed.serverName;
        facts.applicationProtocols = sniffed.alpn;
      } else if (sniffed.application !== 'tcp' && c.httpInspector) {
        facts.applicationProtocols = sniffed.application === 'h2c' ? ['h2c'] : ['http/1.1'];
      }
    }
    const idx = selectFilterChain(matches, facts);
    const chain: CompiledChain | undefined = idx >= 0 ? c.chains[idx] : c.defaultChain;
    if (chain === undefined) {
      entry.stats.noFilterChainMatch++;
      socket.destroy();
      return;
    }
    let stream: net.Socket = socket;
    let protocol: 'http/1.1' | 'h2' = 'http/1.1';
    // TCP proxying forwards half-closes (tcp-proxy.ts); the TCP socket under a TLS one must not end
    // its writing side on the client's FIN either, so this is set before the handshake.
    if (chain.action.kind === 'tcp') socket.allowHalfOpen = true;
    if (chain.tls) {
      try {
        const tlsSocket = await terminateTls(socket, chain.tls, this.#opts.secrets);
        stream = tlsSocket;
        const alpn = tlsSocket.alpnProtocol;
        if (alpn === 'h2' || alpn === 'http/1.1') protocol = alpn;
        else if (chain.action.kind === 'http') {
          // No HTTP ALPN (a mesh client offers istio ALPN only): tell h2 from HTTP/1.1 by the preface, as Envoy's codec AUTO does.
          const inner = await sniffProtocol(tlsSocket, 60_000);
          protocol = inner.transport === 'raw_buffer' && inner.application === 'h2c' ? 'h2' : 'http/1.1';
        }
      } catch (err) {
        entry.stats.tlsHandshakeFailures++;
        socket.destroy();
        return;
      }
    } else if (chain.action.kind === 'http') {
      // Tell h2c prior knowledge from HTTP/1.1; HTTP clients always speak first, so wait as long as the
      // headers timeout would. TLS bytes on this plaintext chain are HTTP/1.1 garbage (400 from the
      // codec, as from Envoy), not a ClientHello to wait for.
      if (sniffed === undefined || sniffed.transport === 'tls') sniffed = await sniffProtocol(socket, 60_000, false);
      protocol = sniffed.transport === 'raw_buffer' && sniffed.application === 'h2c' ? 'h2' : 'http/1.1';
    }
    if (socket.destroyed) return;
    if (chain.gates.length > 0 && !(await this.#admit(chain, stream, facts))) {
      entry.stats.rbacDenied++;
      stream.destroy();
      return;
    }
    if (chain.action.kind === 'http') {
      // The original destination goes with the connection: an HTTP route to an ORIGINAL_DST
      // cluster (PassthroughCluster, e.g. a request to a pod IP) connects there.
      chain.action.hcm.handleConnection(stream, protocol, dst ? { originalDestination: { address: dst.ip, port: dst.port } } : undefined);
      stream.resume();
    } else {
      const meter = this.#opts.tcpMeter;
      const tcp = chain.action.tcp;
      const prefix = this.#opts.peerExchangePrefix;
      const wanted = chain.action.peerExchange;
      const exchange = prefix === undefined ? undefined : { prefix, downstream: wanted !== undefined && (stream as tls.TLSSocket).alpnProtocol === wanted };
      // ORIGINAL_DST clusters (PassthroughCluster) connect to where the client meant to go.
      await proxyTcp(stream, tcp, this.#opts.clusters, entry.stats.tcp, this.#opts.random, facts.serverName, meter && ((cluster) => meter(c, cluster, stream, tcp)), dst ? { address: dst.ip, port: dst.port } : undefined, exchange);
    }
  }

  /** Runs a chain's network RBAC and ext_authz filters in order; false refuses the connection. */
  async #admit(chain: CompiledChain, stream: net.Socket, facts: ConnectionFacts): Promise<boolean> {
    const metadata = new Map<string, Record<string, unknown>>();
    const input = connectionRbacInput(stream, { ip: facts.destinationIp, port: facts.destinationPort }, facts.serverName, metadata);
    const closed = new AbortController();
    stream.once('close', () => closed.abort());
    for (const g of chain.gates) {
      if (g.kind === 'rbac' ? !admitConnection(g.rbac, input, metadata) : !(await admitByAuthorizer(g.extAuthz, input, { address: input.directRemoteIp, port: facts.sourcePort }, this.#opts.clusters, closed.signal))) return false;
    }
    return !stream.destroyed;
  }

  /**
   * Drains a listener generation that no longer takes connections. A changed listener's old
   * connections are asked at once to move on (HTTP/1.1 `connection: close` after their current
   * response, HTTP/2 GOAWAY, idle keep-alive connections closed in the second half): the same port
   * serves them anew. A removed listener's connections have nowhere to go, so they are served as
   * before for the first half of the drain time and asked to close in the second half (idle ones
   * closed in the last quarter). Whatever is still open at the drain time is closed.
   */
  #drain(old: ActiveListener, removed: boolean) {
    this.#draining.add(old);
    const drainMs = this.#opts.drainTimeoutMs ?? 5_000;
    const handlers = httpHandlers(old.compiled);
    const ask = (withinMs: number) => {
      for (const h of handlers) h.shutdown?.(withinMs);
    };
    const askTimer = removed ? setTimeout(() => ask(drainMs / 2), drainMs / 2) : undefined;
    askTimer?.unref?.();
    if (!removed) ask(drainMs);
    const finish = () => {
      clearTimeout(askTimer);
      for (const s of old.connections) s.destroy();
      for (const h of handlers) h.close?.();
      this.#draining.delete(old);
    };
    if (old.connections.size === 0) {
      finish();
      return;
    }
    const timer = setTimeout(finish, drainMs);
    timer.unref?.();
    const check = () => {
      if (old.connections.size === 0) {
        clearTimeout(timer);
        finish();
      }
    };
    for (const s of old.connections) s.once('close', () => setImmediate(check));
  }

  /** Stops accepting everywhere, lets connections finish up to `timeoutMs`, then closes the rest. */
  async drainAll(timeoutMs: number): Promise<void> {
    this.#closed = true;
    const all = [...this.#active.values(), ...this.#draining];
    this.#active.clear();
    await Promise.all(
      all.map(
        (a) =>
          new Promise<void>((resolve) => {
            a.server?.close();
            a.server = undefined;
            for (const h of httpHandlers(a.compiled)) h.shutdown?.(timeoutMs);
            if (a.connections.size === 0) return resolve();
            const timer = setTimeout(() => {
              for (const s of a.connections) s.destroy();
              resolve();
            }, timeoutMs);
            timer.unref?.();
            for (const s of a.connections) {
              s.once('close', () => {
                if (a.connections.size === 0) {
                  clearTimeout(timer);
                  resolve();
                }
              });
            }
          }),
      ),
    );
  }
}
