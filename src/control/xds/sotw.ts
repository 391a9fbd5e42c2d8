/**
 * State-of-the-world ADS (`StreamAggregatedResources`). Per type: the subscription (wildcard, as
 * Envoy asks for LDS/CDS, or named, as for RDS/EDS and everything gRPC asks for), the version and
 * nonce last sent. A request is classified as the xDS protocol doc says: empty response_nonce =
 * new subscription (always answered, as is the first request of a type on a stream); nonce equal to the last one sent = ACK, or NACK when
 * error_detail is set; any other nonce is stale and ignored. A response carries every subscribed
 * resource of the type, and is only sent when that content's version changed.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { discoveryResponseWire, encodeResourcesField, kEncodedResources, preFramed, type DiscoveryRequestMsg, type DiscoveryResponseMsg } from '../../xds/ads-wire.ts';
import { shortTypeName, versionOf, versionOfAll, type EncodedResource } from './resources.ts';
import type { SessionDeps } from './session.ts';
import { AdsStream, type StreamHandle, type Subscription } from './ads-stream.ts';
import { frameMessage } from '../../xds/grpc-framing.ts';

// One frozen array per interned name set, for the status rows: 1,000 Envoy-like streams asking for
// the same 10,000 EDS names each held their own copy of every name (~0.7 MB a stream).
const nameLists = new WeakMap<Set<string>, readonly string[]>();
function namesList(names: Set<string>): readonly string[] {
  let l = nameLists.get(names);
  if (l === undefined) nameLists.set(names, (l = Object.freeze([...names])));
  return l;
}

// Streams with the same named subscription share one Set object (interned when names change, which
// is rare), so the chosen resources and their version are computed once per resource map for all
// of them instead of once per stream (1,000 Envoy-like EDS subscribers hashed 1,000 times).
// Sets are found by size then membership, not by a sorted, joined key: for 10,000 EDS names that key was
// a 500 KB string built (and sorted) per stream, a gigabyte of garbage when 1,000 proxies connect.
const internedBySize = new Map<number, Set<string>[]>();
const internOrder: Set<string>[] = [];
const InternLimit = 1000;
function sameNames(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}
function internNames(names: Set<string>): Set<string> {
  const candidates = internedBySize.get(names.size);
  for (const c of candidates ?? []) if (sameNames(c, names)) return c;
  if (candidates === undefined) internedBySize.set(names.size, [names]);
  else candidates.push(names);
  internOrder.push(names);
  if (internOrder.length > InternLimit) {
    const old = internOrder.shift()!;
    const list = internedBySize.get(old.size)!;
    list.splice(list.indexOf(old), 1);
    if (list.length === 0) internedBySize.delete(old.size);
  }
  return names;
}

/**
 * A resource list encoded once for every stream it goes to: the `resources` field, and the whole
 * response with a nonce shared by those streams (nonces need only be unique within a stream;
 * shared ones start with `s` so they never equal a stream's own numeric nonces).
 */
interface EncodedList {
  version: string;
  typeUrl: string;
  resources: Buffer;
  sharedNonce: string;
  /** The whole response with the shared nonce, framed for gRPC. */
  framed: Buffer;
}
const encodedLists = new WeakMap<object, EncodedList>();
let sharedNonceSeq = 0;
// The wildcard list of a resource map, built once per map rather than once per stream and send.
const wildcardLists = new WeakMap<ReadonlyMap<string, EncodedResource>, EncodedResource[]>();
const namedChoices = new WeakMap<ReadonlyMap<string, EncodedResource>, WeakMap<Set<string>, { chosen: EncodedResource[]; version: string }>>();

interface TypeState extends Subscription {
  names: Set<string>;
}

/** A live stream as the server tracks it. */
export type { StreamHandle } from './ads-stream.ts';

/** Serves one SotW ADS stream. */
export function serveSotw(call: ServerDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>, deps: SessionDeps, onClose: (h: StreamHandle) => void): StreamHandle {
  const stream = new AdsStream<TypeState>(call as ServerDuplexStream<unknown, unknown>, deps, 'sotw', onClose);
  const { session, types } = stream;

  function send(typeUrl: string, st: TypeState, force: boolean): boolean {
    // Every ACK re-checks whether content moved on: versions are memoized (per shared type map for
    // wildcard, per names set here) so that check costs no hashing of thousands of resources.
    const all = session.resourcesOf(typeUrl);
    let chosen: EncodedResource[];
    let version: string;
    if (st.wildcard) {
      version = versionOfAll(all);
      if (!force && version === st.version) return false;
      let list = wildcardLists.get(all);
      if (list === undefined) wildcardLists.set(all, (list = [...all.values()]));
      chosen = list;
    } else {
      let byNames = namedChoices.get(all);
      if (byNames === undefined) namedChoices.set(all, (byNames = new WeakMap()));
      let memo = byNames.get(st.names);
      if (memo === undefined) {
        const picked: EncodedResource[] = [];
        for (const n of st.names) {
          const r = all.get(n);
          if (r !== undefined) picked.push(r);
        }
        memo = { chosen: picked, version: versionOf(picked) };
        byNames.set(st.names, memo);
      }
      ({ chosen, version } = memo);
    }
    if (!force && version === st.version) return false;
    // The resource list is shared by every stream subscribed alike: encode it once.
    const listKey: object = chosen;
    let encoded = encodedLists.get(listKey);
    if (encoded === undefined || encoded.version !== version || encoded.typeUrl !== typeUrl) {
      const resources = encodeResourcesField(chosen.map((r) => r.any));
      const sharedNonce = `s${++sharedNonceSeq}`;
      const framed = frameMessage(discoveryResponseWire.serialize(responseFor(version, typeUrl, sharedNonce, resources)));
      encoded = { version, typeUrl, resources, sharedNonce, framed };
      encodedLists.set(listKey, encoded);
    }
    let nonce: string;
    if (st.nonce !== encoded.sharedNonce) {
      nonce = encoded.sharedNonce;
      call.write(preFramed<DiscoveryResponseMsg>(encoded.framed));
    } else {
      // The same response again on this stream (a resubscription): it needs a nonce of its own.
      nonce = session.nextNonce();
      call.write(responseFor(version, typeUrl, nonce, encoded.resources));
    }
    st.version = version;
    st.nonce = nonce;
    st.answered = false;
    session.recordSent(typeUrl, chosen, [], true);
    deps.status.sent(session.connectionId, typeUrl, version, nonce, chosen.length);
    deps.observer?.sent?.(shortTypeName(typeUrl), encoded.resources.length, session.pushStartedAt === undefined ? undefined : (performance.now() - session.pushStartedAt) / 1000);
    return true;
  }

  function responseFor(version: string, typeUrl: string, nonce: string, resources: Buffer): DiscoveryResponseMsg {
    return {
      version_info: version,
      type_url: typeUrl,
      nonce,
      resources: [],
      control_plane: { identifier: deps.controlPlaneId },
      [kEncodedResources]: resources,
    } as DiscoveryResponseMsg;
  }

  function handle(req: DiscoveryRequestMsg, typeUrl: string): void {
    const names = req.resource_names ?? [];
    const nonce = req.response_nonce ?? '';
    let st = types.get(typeUrl);
    if (st !== undefined && nonce !== '' && nonce !== st.nonce) {
      return; // stale: a response crossed this request on the wire; a newer request will follow.
    }
    const first = st === undefined;
    if (st === undefined) {
      st = { wildcard: false, names: new Set(), version: undefined, nonce: undefined, answered: false };
      types.set(typeUrl, st);
    }
    // Wildcard per the xDS doc: an empty list on the first request (legacy), or an explicit "*".
    const wildcard = names.includes('*') || (names.length === 0 && (first || st.wildcard));
    const named = new Set(names);
    named.delete('*');
    const namesChanged = wildcard !== st.wildcard || !sameNames(named, st.names);
    st.wildcard = wildcard;
    if (namesChanged) st.names = internNames(named); // identity kept when unchanged: send()'s memo keys on it
    if (namesChanged || first) deps.status.subscribed(session.connectionId, typeUrl, wildcard ? undefined : namesList(st.names));

    // A type not seen on this stream is a new subscription even if the client carried a nonce
    // over from a previous stream or control plane (as go-control-plane treats it).
    if (nonce === '' || first) {
      stream.send(typeUrl, st, true); // new subscription or reconnect: always answer
      stream.checkHold();
      return;
    }
    stream.answered(typeUrl, st, req.error_detail, req.version_info ?? '');
    // Names changed with the (N)ACK, or content moved on while this one was in flight.
    if (!stream.isHeld(typeUrl)) stream.send(typeUrl, st, false);
    stream.checkHold();
  }

  return stream.serve({ send, handle }, 'DiscoveryRequest');
}
