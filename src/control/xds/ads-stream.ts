/**
 * What a SotW and a delta ADS stream share, written once: the proxy's session (its node from the
 * first request), the per-type subscriptions, the "make before break" hold of LDS/RDS behind new
 * EDS clusters (warming.ts), recording ACKs and NACKs, the push on `refresh()` (regenerate, CDS
 * first, then the other types in order unless held), the error handler, and tearing down exactly
 * once on any of the stream's close events. The two protocols differ only in how a request is read
 * and how one type is sent (sotw.ts, delta.ts).
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describeError } from '../../errors.ts';
import type { NodeJson } from '../../xds/ads-wire.ts';
import { TypeUrl } from '../../xds/types.ts';
import type { EncodedResource } from './resources.ts';
import { pushOrder, shortTypeName } from './resources.ts';
import { ProxySession, type SessionDeps } from './session.ts';
import { WarmingGate } from './warming.ts';

/** A connected stream as the server sees it. */
export interface StreamHandle {
  readonly session: ProxySession;
  /** Regenerates and pushes what changed (queued behind pending requests). */
  refresh(): void;
  /** Ends the stream (server shutdown). */
  end(): void;
}

/** One type's subscription on a stream: what the client asked for and what it was last sent. */
export interface Subscription {
  wildcard: boolean;
  names: ReadonlySet<string>;
  /** Version of the last response sent. */
  version: string | undefined;
  /** Nonce of the last response sent. */
  nonce: string | undefined;
  /** The last response of this type was ACKed or NACKed. */
  answered: boolean;
}

/** How one protocol (SotW or delta) reads requests and sends a type. */
export interface AdsProtocol<S extends Subscription, Req> {
  /** Sends one type if its content moved on (or `force`); true when something was sent. */
  send(typeUrl: string, st: S, force: boolean): boolean;
  /** Handles one request of a known proxy whose type_url is set. */
  handle(req: Req, typeUrl: string): void;
}

/** The shared half of one stream, handed to its protocol. */
export class AdsStream<S extends Subscription> {
  readonly session: ProxySession;
  readonly deps: SessionDeps;
  readonly types = new Map<string, S>();
  readonly #gate: WarmingGate;
  /** The gRPC call; the protocol writes its responses to it. */
  readonly call: ServerDuplexStream<unknown, unknown>;
  readonly #onClose: (h: StreamHandle) => void;
  #protocol: AdsProtocol<S, never> | undefined;
  #closed = false;
  readonly handle: StreamHandle;

  constructor(call: ServerDuplexStream<unknown, unknown>, deps: SessionDeps, mode: 'sotw' | 'delta', onClose: (h: StreamHandle) => void) {
    this.call = call;
    this.deps = deps;
    this.#onClose = onClose;
    this.session = new ProxySession(deps, mode, call.getPeer());
    this.#gate = new WarmingGate(deps.warmingHoldMs, (held) => this.session.run(() => this.#sendTypes(pushOrder(held)), this.fail));
    this.handle = { session: this.session, refresh: () => this.#refresh(), end: () => this.#end() };
  }

  /** Starts serving with `protocol`; `requestName` names the request message in errors. */
  serve<Req extends { node?: NodeJson; type_url?: string }>(protocol: AdsProtocol<S, Req>, requestName: string): StreamHandle {
    this.#protocol = protocol as AdsProtocol<S, never>;
    const call = this.call as unknown as { on(event: string, listener: (...args: unknown[]) => void): unknown };
    call.on('data', (req) => this.session.run(() => this.#request(req as Req, requestName), this.fail));
    call.on('end', () => this.#end());
    call.on('error', () => this.#finish());
    call.on('cancelled', () => this.#finish());
    call.on('close', () => this.#finish());
    return this.handle;
  }

  /** Ends the stream with INTERNAL after an unexpected error. */
  readonly fail = (err: unknown): void => {
    this.deps.log.warn({ proxy: this.session.proxy?.id, mode: this.session.mode, err: describeError(err) }, 'xds: stream error');
    this.#abort(GrpcStatus.INTERNAL, describeError(err));
  };

  /**
   * Sends one type through the protocol if its content moved on, or `force`d. Nothing goes out
   * before the session has a (consistent) set; a type never answered yet is answered as soon as
   * one arrives, even if empty, since the client waits for that first response.
   */
  send(typeUrl: string, st: S, force: boolean): boolean {
    if (this.session.current === undefined || this.#protocol === undefined) return false;
    return this.#protocol.send(typeUrl, st, force || st.nonce === undefined);
  }

  /** True while LDS/RDS wait for new EDS clusters to be subscribed. */
  isHeld(typeUrl: string): boolean {
    return this.#gate.isHeld(typeUrl);
  }

  /** Releases held types once CDS was answered and every EDS cluster is subscribed. */
  checkHold(): void {
    this.#gate.check(this.types.get(TypeUrl.Cluster)?.answered ?? true, (n) => this.#edsSubscribed(n), this.#subscribedClusters());
  }

  /** Records the client's answer to the last response of `typeUrl`: a NACK when `error` is set. */
  answered(typeUrl: string, st: S, error: { message?: string } | undefined, ackedVersion: string): void {
    st.answered = true;
    if (error !== undefined) {
      const message = error.message ?? '';
      this.deps.status.nacked(this.session.connectionId, typeUrl, st.version ?? '', message);
      this.deps.observer?.rejected?.(shortTypeName(typeUrl));
      this.deps.log.warn({ proxy: this.session.proxy?.id, type: shortTypeName(typeUrl), version: st.version, error: message }, 'xds: NACK');
    } else {
      this.deps.status.acked(this.session.connectionId, typeUrl, ackedVersion);
    }
  }

  async #request<Req extends { node?: NodeJson; type_url?: string }>(req: Req, requestName: string): Promise<void> {
    if (this.session.proxy === undefined) {
      if (req.node === undefined || (req.node.id ?? '') === '') {
        this.#abort(GrpcStatus.INVALID_ARGUMENT, `first ${requestName} must carry node.id`);
        return;
      }
      await this.session.init(req.node);
    }
    const typeUrl = req.type_url ?? '';
    if (typeUrl !== '') (this.#protocol as AdsProtocol<S, Req>).handle(req, typeUrl);
  }

  #edsSubscribed(name: string): boolean {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    return eds !== undefined && (eds.wildcard || eds.names.has(name));
  }

  /** The clusters this proxy is subscribed to (all for wildcard, as Envoy; named for gRPC). */
  #subscribedClusters(): ReadonlyMap<string, EncodedResource> {
    const cds = this.types.get(TypeUrl.Cluster);
    const all = this.session.resourcesOf(TypeUrl.Cluster);
    if (cds === undefined || cds.wildcard) return all;
    return new Map([...all].filter(([n]) => cds.names.has(n)));
  }

  #sendTypes(order: readonly string[]): void {
    for (const t of order) {
      const st = this.types.get(t);
      if (st !== undefined && !this.#gate.isHeld(t)) this.send(t, st, false);
    }
  }

  #refresh(): void {
    const session = this.session;
    session.dirty = true;
    session.run(async () => {
      if (session.proxy === undefined || !session.dirty || this.#protocol === undefined) return;
      if (!(await session.regenerate())) return;
      let order = pushOrder(this.types.keys());
      const cds = this.types.get(TypeUrl.Cluster);
      if (cds !== undefined) {
        order = order.filter((t) => t !== TypeUrl.Cluster);
        if (this.send(TypeUrl.Cluster, cds, false)) order = this.#gate.afterCds(order, (n) => this.#edsSubscribed(n), this.#subscribedClusters());
      }
      this.#sendTypes(order);
    }, this.fail);
  }

  #abort(code: GrpcStatus, message: string): void {
    this.#finish();
    // grpc-js turns an emitted error into the stream's status and ends it.
    this.call.emit('error', Object.assign(new Error(message), { code }));
  }

  #end(): void {
    this.#finish();
    this.call.end();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate.close();
    this.session.close();
    this.#onClose(this.handle);
  }
}
