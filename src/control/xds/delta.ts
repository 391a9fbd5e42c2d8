/**
 * Incremental ADS (`DeltaAggregatedResources`). Per type: the subscription (wildcard or names,
 * changed by resource_names_subscribe / _unsubscribe, "*" meaning wildcard) and what the client
 * has, name -> per-resource version (seeded from initial_resource_versions on reconnect). A
 * response carries only resources whose version differs from the client's, plus the names the
 * client has that no longer exist (removed_resources). Subscription changes apply whatever the
 * nonce; ACK/NACK is decided by the nonce as in SotW, and stale nonces are not (N)ACKs.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describeError } from '../../errors.ts';
import type { DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg } from '../../xds/ads-wire.ts';
import { pushOrder, shortTypeName, versionOf, type EncodedResource } from './resources.ts';
import { ProxySession, type SessionDeps } from './session.ts';
import { WarmingGate } from './warming.ts';
import { TypeUrl } from '../../xds/types.ts';
import { runStream, type StreamHandle } from './stream-lifecycle.ts';

interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  /** What the client has: name -> version. */
  client: Map<string, string>;
  nonce: string | undefined;
  version: string | undefined;
  /** The last response of this type was ACKed or NACKed. */
  answered: boolean;
}

/** Serves one delta ADS stream. */
export function serveDelta(
  call: ServerDuplexStream<DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg>,
  deps: SessionDeps,
  onClose: (h: StreamHandle) => void,
): StreamHandle {
  const session = new ProxySession(deps, 'delta', call.getPeer());
  const types = new Map<string, TypeState>();
  const gate = new WarmingGate(deps.warmingHoldMs, (held) =>
    session.run(() => {
      for (const t of pushOrder(held)) {
        const st = types.get(t);
        if (st !== undefined) send(t, st, false);
      }
    }, fail),
  );
  const edsSubscribed = (name: string): boolean => {
    const eds = types.get(TypeUrl.ClusterLoadAssignment);
    return eds !== undefined && (eds.wildcard || eds.names.has(name));
  };
  /** The clusters this proxy is subscribed to (all for wildcard, as Envoy; named for gRPC). */
  const subscribedClusters = (): ReadonlyMap<string, EncodedResource> => {
    const cds = types.get(TypeUrl.Cluster);
    const all = session.resourcesOf(TypeUrl.Cluster);
    if (cds === undefined || cds.wildcard) return all;
    return new Map([...all].filter(([n]) => cds.names.has(n)));
  };
  const checkGate = (): void => gate.check(types.get(TypeUrl.Cluster)?.answered ?? true, edsSubscribed, subscribedClusters());

  let finish: () => void = () => {};
  const fail = (err: unknown): void => {
    deps.log.warn({ proxy: session.proxy?.id, err: describeError(err) }, 'xds: delta stream error');
    finish();
    // grpc-js turns an emitted error into the stream's status and ends it.
    call.emit('error', Object.assign(new Error(describeError(err)), { code: GrpcStatus.INTERNAL }));
  };

  function send(typeUrl: string, st: TypeState, force: boolean): boolean {
    const all = session.resourcesOf(typeUrl);
    const wanted: EncodedResource[] = [];
    if (st.wildcard) wanted.push(...all.values());
    else {
      for (const n of st.names) {
        const r = all.get(n);
        if (r !== undefined) wanted.push(r);
      }
    }
    const wantedNames = new Set(wanted.map((r) => r.name));
    const changed = wanted.filter((r) => st.client.get(r.name) !== r.hash);
    const removed = [...st.client.keys()].filter((n) => !wantedNames.has(n));
    if (!force && changed.length === 0 && removed.length === 0) return false;
    const version = versionOf(wanted);
    const nonce = session.nextNonce();
    st.nonce = nonce;
    st.answered = false;
    st.version = version;
    for (const r of changed) st.client.set(r.name, r.hash);
    for (const n of removed) st.client.delete(n);
    call.write({
      system_version_info: version,
      type_url: typeUrl,
      nonce,
      resources: changed.map((r) => ({ name: r.name, version: r.hash, resource: r.any })),
      removed_resources: removed,
      control_plane: { identifier: deps.controlPlaneId },
    });
    session.recordSent(typeUrl, changed, removed, false);
 deps.status.sent(session.connectionId, typeUrl, version, nonce, wanted.length);
    let bytes = 0;
    for (const r of changed) bytes += r.any.value.length;
    deps.observer?.sent?.(shortTypeName(typeUrl), bytes, session.pushStartedAt === undefined ? undefined : (performance.now() - session.pushStartedAt) / 1000);
    return true;
  }

  async function handle(req: DeltaDiscoveryRequestMsg): Promise<void> {
    if (session.proxy === undefined) {
      if (req.node === undefined || (req.node.id ?? '') === '') {
        finish();
        call.emit('error', Object.assign(new Error('first DeltaDiscoveryRequest must carry node.id'), { code: GrpcStatus.INVALID_ARGUMENT }));
        return;
      }
      await session.init(req.node);
    }
    const typeUrl = req.type_url ?? '';
    if (typeUrl === '') return;
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    let st = types.get(typeUrl);
    const first = st === undefined;
    if (st === undefined) {
      const client = new Map(Object.entries(req.initial_resource_versions ?? {}));
      st = { wildcard: subscribe.length === 0, names: new Set(), client, nonce: undefined, version: undefined, answered: false };
      types.set(typeUrl, st);
    }
    for (const n of subscribe) {
      if (n === '*') st.wildcard = true;
      else st.names.add(n);
    }
    for (const n of unsubscribe) {
      if (n === '*') st.wildcard = false;
      else {
        st.names.delete(n);
        if (!st.wildcard) st.client.delete(n); // the client forgets it; nothing to remove
      }
    }
    if (first || subscribe.length > 0 || unsubscribe.length > 0) {
      deps.status.subscribed(session.connectionId, typeUrl, st.wildcard ? undefined : [...st.names]);
    }
    const nonce = req.response_nonce ?? '';
    if (nonce !== '' && nonce === st.nonce) {
      st.answered = true;
      if (req.error_detail !== undefined) {
        const message = req.error_detail.message ?? '';
        deps.status.nacked(session.connectionId, typeUrl, st.version ?? '', message);
      deps.observer?.rejected?.(shortTypeName(typeUrl));
        deps.log.warn({ proxy: session.proxy?.id, type: shortTypeName(typeUrl), version: st.version, error: message }, 'xds: NACK');
      } else {
        deps.status.acked(session.connectionId, typeUrl, st.version ?? '');
      }
    }
    // The first request of a type always gets an answer (Envoy waits for it to finish init).
    if (first || !gate.isHeld(typeUrl)) send(typeUrl, st, first);
    checkGate();
  }

  const life = runStream<TypeState, DeltaDiscoveryRequestMsg>({ call, session, gate, types, send, edsSubscribed, subscribedClusters, handle, fail, onClose });
  finish = life.finish;
  return life.handle;
}
