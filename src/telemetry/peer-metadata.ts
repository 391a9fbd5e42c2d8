/**
 * Istio's HTTP metadata exchange: a proxy tells its peer who it is in the header pair
 * `x-envoy-peer-metadata` (base64 of a protobuf `google.protobuf.Struct` holding the node metadata
 * keys NAME, NAMESPACE, LABELS, WORKLOAD_NAME, CLUSTER_ID, SERVICE_ACCOUNT, ...) and
 * `x-envoy-peer-metadata-id` (the node id). The client side sends it on the request, the server
 * side answers on the response, so both proxies label a request with the same source and
 * destination workloads; both strip the peer's headers before the application sees them. The wire
 * format is Istio's, so Trellis and Istio sidecars understand each other.
 *
 * Decoding is cached by header value (peers are few and their headers never change), bounded so
 * that junk headers cannot grow memory.
 */
import { decodeMessage, encodeMessage } from '../xds/codec.ts';
import { UnknownWorkload, workloadLabelsOf, type WorkloadLabels } from './istio-metrics.ts';

export const PeerMetadataHeader = 'x-envoy-peer-metadata';
export const PeerMetadataIdHeader = 'x-envoy-peer-metadata-id';

/** The node metadata keys a proxy shares with its peers (Istio's exchange keys). */
const ExchangedKeys = ['NAME', 'NAMESPACE', 'LABELS', 'WORKLOAD_NAME', 'OWNER', 'CLUSTER_ID', 'MESH_ID', 'SERVICE_ACCOUNT', 'INSTANCE_IPS', 'ISTIO_VERSION'] as const;

/** A decoded peer: its label values and a small id (part of the label-set cache key). */
export interface Peer {
  readonly id: number;
  readonly labels: WorkloadLabels;
}

/** The peer of a request that carried no (or unreadable) metadata. */
export const UnknownPeer: Peer = Object.freeze({ id: 0, labels: UnknownWorkload });

/** This proxy's own header values, computed once from its node metadata. */
export function encodePeerMetadata(nodeMetadata: Readonly<Record<string, unknown>>): string {
  return Buffer.from(encodeMessage('google.protobuf.Struct', exchangedFields(nodeMetadata))).toString('base64');
}

/** The node metadata fields a proxy tells its peers (the header above, and the TCP exchange's prefix). */
export function exchangedFields(nodeMetadata: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const k of ExchangedKeys) {
    const v = nodeMetadata[k];
    if (typeof v === 'string' && v !== '') fields[k] = v;
    else if (k === 'LABELS' && v !== null && typeof v === 'object') {
      const labels: Record<string, string> = {};
      for (const [lk, lv] of Object.entries(v)) if (typeof lv === 'string') labels[lk] = lv;
      fields[k] = labels;
    }
  }
  return fields;
}

/** Decodes peer header values into peers, with a bounded cache. */
export class PeerDecoder {
  readonly #cache = new Map<string, Peer>();
  readonly #max: number;
  #nextId = 1;

  constructor(maxEntries = 256) {
    this.#max = maxEntries;
  }

  /** The peer a header value names; UnknownPeer for a missing or malformed value. */
  decode(header: string | string[] | undefined): Peer {
    if (header === undefined) return UnknownPeer;
    const value = Array.isArray(header) ? header[0] : header;
    if (value === undefined || value === '' || value.length > 8192) return UnknownPeer;
    // A hit first: the parse closure below (and its context) would be garbage on every request.
    return this.#cache.get(value) ?? this.#decodeNew(value);
  }

  #decodeNew(value: string): Peer {
    return this.lookup(value, () => decodeMessage('google.protobuf.Struct', Buffer.from(value, 'base64')));
  }

  /**
   * The peer `key` (a header value, a TCP exchange payload) names, decoded by `parse` into node
   * metadata on a cache miss; UnknownPeer when `parse` throws or returns undefined.
   */
  lookup(key: string, parse: () => Readonly<Record<string, unknown>> | undefined): Peer {
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    let peer: Peer = UnknownPeer;
    try {
      const meta = parse();
      if (meta !== undefined) peer = Object.freeze({ id: this.#nextId++, labels: workloadLabelsOf(meta) });
    } catch {
      // Malformed metadata: the peer stays unknown, the connection or request goes on.
    }
    if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(key, peer);
    return peer;
  }
}
