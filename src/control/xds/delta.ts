/**
 * Incremental ADS (`DeltaAggregatedResources`). Per type: the subscription (wildcard or names,
 * changed by resource_names_subscribe / _unsubscribe, "*" meaning wildcard) and what the client
 * has, name -> per-resource version (seeded from initial_resource_versions on reconnect). A
 * response carries only resources whose version differs from the client's, plus the names the
 * client has that no longer exist (removed_resources). Subscription changes apply whatever the
 * nonce; ACK/NACK is decided by the nonce as in SotW, and stale nonces are not (N)ACKs.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg } from '../../xds/ads-wire.ts';
import { shortTypeName, versionOf, type EncodedResource } from './resources.ts';
import type { SessionDeps } from './session.ts';
import { AdsStream, type StreamHandle, type Subscription } from './ads-stream.ts';

interface TypeState extends Subscription {
  names: Set<string>;
  /** What the client has: name -> version. */
  client: Map<string, string>;
}

/** Serves one delta ADS stream. */
export function serveDelta(call: ServerDuplexStream<DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg>, deps: SessionDeps, onClose: (h: StreamHandle) => void): StreamHandle {
  const stream = new AdsStream<TypeState>(call as ServerDuplexStream<unknown, unknown>, deps, 'delta', onClose);
  const { session, types } = stream;

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

  function handle(req: DeltaDiscoveryRequestMsg, typeUrl: string): void {
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
    if (nonce !== '' && nonce === st.nonce) stream.answered(typeUrl, st, req.error_detail, st.version ?? '');
    // The first request of a type always gets an answer (Envoy waits for it to finish init).
    if (first || !stream.isHeld(typeUrl)) stream.send(typeUrl, st, first);
    stream.checkHold();
  }

  return stream.serve({ send, handle }, 'DeltaDiscoveryRequest');
}
