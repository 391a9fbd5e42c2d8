/**
 * The proxy's xDS client: one ADS stream (state of the world) to the control plane. It
 * subscribes to clusters and listeners (wildcard), then to the endpoints and route configurations
 * they reference; decodes every resource of a response, hands the whole set to the `ConfigApplier`
 * (which validates all of it before applying any of it) and ACKs, or NACKs with the applier's
 * error and keeps the previous config. When the control plane goes away the last good config keeps
 * serving and the client reconnects with jittered exponential backoff, re-announcing what it has.
 */
import * as grpc from '@grpc/grpc-js';
import { adsServiceDefinition, type DiscoveryRequestMsg, type DiscoveryResponseMsg, type NodeJson } from '../../xds/ads-wire.ts';
import { fromAny } from '../../xds/codec.ts';
import { TypeUrl, type XdsJson, type XdsTypeUrl } from '../../xds/types.ts';
import { describeError, TrellisError } from '../../errors.ts';
import { edsNamesOf, rdsNamesOf } from '../../xds/references.ts';
import { sdsNamesOf } from '../../xds/sds-names.ts';

/**
 * Applies one type's new state. `resources` is the complete set of that type the proxy should now
 * have (the client merges partial RDS/EDS responses). Must validate everything before changing
 * anything, and throw (ideally a TrellisError naming resource and field) to reject the update.
 */
export interface ConfigApplier {
  apply(typeUrl: XdsTypeUrl, resources: ReadonlyMap<string, XdsJson>): void | Promise<void>;
}

export interface AdsClientOptions {
  /** `host:port` of the control plane's ADS server. */
  address: string;
  node: NodeJson;
  applier: ConfigApplier;
  credentials?: grpc.ChannelCredentials;
  /** First reconnect delay (ms), doubled up to `maxBackoffMs`, with full jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  random?: () => number;
  /**
   * How long readiness waits for a named secret the control plane does not send (Envoy's SDS
   * `initial_fetch_timeout`, default 15 s): after it the proxy initializes without the secret,
   * and only the connections that need it fail (a Secret missing for one DestinationRule must
   * not keep a whole sidecar out of service).
   */
  secretFetchTimeoutMs?: number;
}

/** What the client knows per type, for status and /config_dump. */
export interface TypeState {
  /** Version of the last accepted response ('' before any). */
  version: string;
  /** Nonce of the last response received. */
  nonce: string;
  /** Subscribed names; empty = wildcard (LDS, CDS). */
  names: string[];
  /** Accepted resources by name. */
  resources: Map<string, XdsJson>;
  /** True once a response of this type was accepted at least once. */
  received: boolean;
  lastError?: string;
  lastUpdate?: number;
  /** When the current names were subscribed (non-wildcard types). */
  subscribedAt?: number;
}

const order: readonly XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Secret];
const wildcard = new Set<string>([TypeUrl.Cluster, TypeUrl.Listener]);

type AdsStream = grpc.ClientDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>;
const AdsClientCtor = grpc.makeGenericClientConstructor(adsServiceDefinition, 'AggregatedDiscoveryService');

export class AdsClient {
  readonly #opts: AdsClientOptions;
  readonly #state = new Map<XdsTypeUrl, TypeState>();
  #client: grpc.Client | undefined;
  #stream: AdsStream | undefined;
  #stopped = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #connected = false;
  #queue: Promise<void> = Promise.resolve();
  #readyResolve!: () => void;
  /** Resolves once the first complete config (clusters, endpoints, listeners, routes) is applied. */
  readonly ready: Promise<void>;
  #isReady = false;
  #listeners = new Set<() => void>();
  /** Accepted and rejected updates per type (Envoy's update_success / update_rejected). */
  readonly updates = new Map<XdsTypeUrl, { success: number; rejected: number }>();
  #secretTimer: NodeJS.Timeout | undefined;

  constructor(opts: AdsClientOptions) {
    this.#opts = opts;
    for (const t of order) this.#state.set(t, { version: '', nonce: '', names: [], resources: new Map(), received: false });
    this.ready = new Promise((r) => (this.#readyResolve = r));
  }

  /** Per-type state (read-only use). */
  get state(): ReadonlyMap<XdsTypeUrl, Readonly<TypeState>> {
    return this.#state;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get isReady(): boolean {
    return this.#isReady;
  }

  /** Called after every accepted update (for admin/status). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    this.#stopped = false;
    this.#client ??= new AdsClientCtor(this.#opts.address, this.#opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      // HTTP/2 windows sized like Envoy's (grpc-js defaults to 64 KiB): a route table of a
      // thousand services would otherwise arrive one window update at a time.
      'grpc-node.flow_control_window': 64 * 1024 * 1024,
      // Reconnect to a control plane that is not (yet) listening within half a second, not
      // grpc-js's 1 s growing to 120 s: a proxy started next to its control plane (`trellis up`
      // starts them together) or outliving a restart of it should not sit out a long backoff.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 500,
    });
    this.#open();
  }

  /** Closes the stream; the applied config stays as it is. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#secretTimer);
    this.#stream?.cancel();
    this.#stream = undefined;
    this.#client?.close();
    this.#client = undefined;
    this.#connected = false;
  }

  #countUpdate(typeUrl: XdsTypeUrl, ok: boolean): void {
    let c = this.updates.get(typeUrl);
    if (c === undefined) this.updates.set(typeUrl, (c = { success: 0, rejected: 0 }));
    if (ok) c.success++;
    else c.rejected++;
  }

  #log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) {
    this.#opts.log?.(level, msg, fields);
  }

  #open() {
    if (this.#stopped || this.#client === undefined) return;
    const client = this.#client as unknown as { StreamAggregatedResources(metadata: grpc.Metadata): AdsStream };
    // waitForReady (a metadata option in grpc-js): the stream waits for the channel to connect
    // instead of failing at once, so a control plane that is still starting costs no error, log
    // line or stream backoff.
    const stream = client.StreamAggregatedResources(new grpc.Metadata({ waitForReady: true }));
    this.#stream = stream;
    let gotData = false;
    stream.on('data', (msg: DiscoveryResponseMsg) => {
      if (!gotData) {
        gotData = true;
        this.#attempt = 0;
        this.#connected = true;
        this.#log('info', 'xds: connected', { address: this.#opts.address });
      }
      // Responses are handled strictly in order: an applier may be async.
      this.#queue = this.#queue.then(() => this.#onResponse(stream, msg)).catch((err) => {
        this.#log('error', 'xds: response handling failed', { error: describeError(err) });
      });
    });
    const onEnd = (err?: Error) => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      this.#connected = false;
      if (this.#stopped) return;
      this.#log('warn', 'xds: stream closed, keeping last good config', { error: err ? describeError(err) : 'end of stream' });
      this.#scheduleReconnect();
    };
    stream.on('error', (err: Error) => onEnd(err));
    stream.on('end', () => onEnd());
    // (Re)announce every type: with the versions we hold, so a restarted control plane knows
    // what we have; the names we need for RDS/EDS.
    for (const t of order) {
      const st = this.#state.get(t)!;
      if (!wildcard.has(t) && st.names.length === 0) continue;
      this.#send(stream, { type_url: t, version_info: st.version, resource_names: st.names, response_nonce: '' }, true);
    }
  }

  #scheduleReconnect() {
    const initial = this.#opts.initialBackoffMs ?? 500;
    const max = this.#opts.maxBackoffMs ?? 30_000;
    const ceiling = Math.min(max, initial * 2 ** this.#attempt);
    this.#attempt++;
    const delay = Math.max(50, Math.floor((this.#opts.random ?? Math.random)() * ceiling));
    this.#timer = setTimeout(() => this.#open(), delay);
    this.#timer.unref?.();
  }

  #send(stream: AdsStream, req: DiscoveryRequestMsg, withNode = false) {
    if (withNode) req.node = this.#opts.node;
    try {
      stream.write(req);
    } catch (err) {
      this.#log('warn', 'xds: write failed', { error: describeError(err) });
    }
  }

  async #onResponse(stream: AdsStream, msg: DiscoveryResponseMsg): Promise<void> {
    const typeUrl = msg.type_url as XdsTypeUrl;
    const st = this.#state.get(typeUrl);
    if (st === undefined) {
      // A type we never asked for: NACK so the server's status shows it.
      this.#send(stream, { type_url: msg.type_url, response_nonce: msg.nonce ?? '', version_info: '', error_detail: { code: 12, message: `unsupported type ${msg.type_url}` } });
      return;
    }
    st.nonce = msg.nonce ?? '';
    let next: Map<string, XdsJson>;
    try {
      const decoded = new Map<string, XdsJson>();
      for (const [i, any] of (msg.resources ?? []).entries()) {
        let json: XdsJson;
        try {
          json = fromAny(any);
        } catch (err) {
          throw new TrellisError('XDS_DECODE', `${shortType(typeUrl)} resource #${i}: cannot decode: ${describeError(err)}`, { cause: err });
        }
        const name = resourceName(typeUrl, json);
        if (name === '') throw new TrellisError('XDS_INVALID', `${shortType(typeUrl)} resource #${i}: missing name`);
        if (decoded.has(name)) throw new TrellisError('XDS_INVALID', `${shortType(typeUrl)} '${name}': duplicate in one response`);
        decoded.set(name, json);
      }
      if (wildcard.has(typeUrl)) {
        next = decoded;
      } else {
        // RDS/EDS: a response carries changed resources; keep the others we still subscribe to.
        next = new Map();
        const wanted = new Set(st.names);
        for (const [name, r] of st.resources) if (wanted.has(name)) next.set(name, r);
        for (const [name, r] of decoded) next.set(name, r);
      }
      await this.#opts.applier.apply(typeUrl, next);
    } catch (err) {
      const message = describeError(err);
      st.lastError = message;
      this.#countUpdate(typeUrl, false);
      this.#log('warn', 'xds: rejected update (NACK), keeping previous config', { type: shortType(typeUrl), version: msg.version_info, error: message });
      this.#send(stream, { type_url: typeUrl, version_info: st.version, response_nonce: st.nonce, resource_names: st.names, error_detail: { code: 3, message } });
      return;
    }
    this.#countUpdate(typeUrl, true);
    st.resources = next;
    st.version = msg.version_info ?? '';
    st.received = true;
    st.lastError = undefined;
    st.lastUpdate = Date.now();
    // Subscribe to what the new clusters/listeners reference before ACKing them.
    if (typeUrl === TypeUrl.Cluster) this.#resubscribe(stream, TypeUrl.ClusterLoadAssignment, edsNamesOf(next.values()));
    if (typeUrl === TypeUrl.Listener) this.#resubscribe(stream, TypeUrl.RouteConfiguration, rdsNamesOf(next.values()));
    if (typeUrl === TypeUrl.Cluster || typeUrl === TypeUrl.Listener) {
      // TLS material named by clusters' and listeners' transport sockets comes by SDS.
      const both = [...this.#state.get(TypeUrl.Cluster)!.resources.values(), ...this.#state.get(TypeUrl.Listener)!.resources.values()];
      this.#resubscribe(stream, TypeUrl.Secret, new Set(sdsNamesOf(both)));
    }
    this.#send(stream, { type_url: typeUrl, version_info: st.version, response_nonce: st.nonce, resource_names: st.names });
    this.#checkReady();
    for (const l of this.#listeners) l();
  }

  #resubscribe(stream: AdsStream, typeUrl: XdsTypeUrl, names: Set<string>) {
    const st = this.#state.get(typeUrl)!;
    const sorted = [...names].sort();
    if (sorted.length === st.names.length && sorted.every((n, i) => n === st.names[i])) return;
    st.names = sorted;
    st.subscribedAt = Date.now();
    // Drop resources no longer referenced; an empty subscription means "nothing needed".
    for (const name of [...st.resources.keys()]) if (!names.has(name)) st.resources.delete(name);
    if (sorted.length === 0) {
      // Nothing referenced: the type is trivially complete, and the applier learns of the removals.
      st.received = true;
      void Promise.resolve(this.#opts.applier.apply(typeUrl, st.resources)).catch(() => {});
    }
    this.#send(stream, { type_url: typeUrl, version_info: st.version, response_nonce: st.nonce, resource_names: sorted }, st.nonce === '');
  }

  #checkReady() {
    if (this.#isReady) return;
    for (const t of order) {
      const st = this.#state.get(t)!;
      // RDS/EDS with nothing subscribed are complete by definition (no listener/cluster needs them).
      if (!wildcard.has(t) && st.names.length === 0) continue;
      if (!st.received) return;
      const missing = wildcard.has(t) ? [] : st.names.filter((n) => !st.resources.has(n));
      if (missing.length === 0) continue;
      if (t !== TypeUrl.Secret) return;
      const timeout = this.#opts.secretFetchTimeoutMs ?? 15_000;
      const waited = Date.now() - (st.subscribedAt ?? 0);
      if (waited < timeout) {
        clearTimeout(this.#secretTimer);
        this.#secretTimer = setTimeout(() => this.#checkReady(), timeout - waited + 10);
        this.#secretTimer.unref?.();
        return;
      }
      this.#log('warn', 'xds: initializing without secrets the control plane did not send; connections that need them fail', { missing });
    }
    clearTimeout(this.#secretTimer);
    this.#isReady = true;
    this.#readyResolve();
  }
}

function shortType(typeUrl: string): string {
  switch (typeUrl) {
    case TypeUrl.Cluster: return 'CDS';
    case TypeUrl.ClusterLoadAssignment: return 'EDS';
    case TypeUrl.Listener: return 'LDS';
    case TypeUrl.RouteConfiguration: return 'RDS';
    case TypeUrl.Secret: return 'SDS';
    default: return typeUrl;
  }
}

/** The name of a resource: `cluster_name` for ClusterLoadAssignment, `name` otherwise. */
export function resourceName(typeUrl: string, json: XdsJson): string {
  const n = typeUrl === TypeUrl.ClusterLoadAssignment ? json.cluster_name : json.name;
  return typeof n === 'string' ? n : '';
}
