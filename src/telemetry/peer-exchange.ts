/**
 * Istio's TCP metadata exchange (the `istio.metadata_exchange` network filter of istio-proxy): when
 * an mTLS connection negotiated the ALPN protocol `istio-peer-exchange`, each side first writes a
 * prefix and reads the peer's, then the connection carries the application's bytes. The prefix:
 * 4 bytes magic 0x3D230467 and 4 bytes payload length (both big-endian), then the payload, a
 * `google.protobuf.Any` (type_url `type.googleapis.com/google.protobuf.Struct`) whose value is a
 * Struct with `x-envoy-peer-metadata` (a Struct of the node metadata fields Istio exchanges, the
 * same as the HTTP header's) and `x-envoy-peer-metadata-id` (the node id). A peer whose first bytes
 * do not start with the magic has no exchange filter: its bytes are the application's, untouched.
 *
 * This module is the codec only (no sockets): `encodePeerExchange` builds this proxy's prefix once,
 * `PeerExchangeReader` consumes the peer's prefix from the first chunks, however they are split.
 */
import { decodeMessage, encodeMessage, lookupType } from '../xds/codec.ts';
import { PeerMetadataHeader, PeerMetadataIdHeader, exchangedFields } from './peer-metadata.ts';

/** The ALPN protocol that turns the exchange on (Istio's `protocol` in the filter config). */
export const PeerExchangeAlpn = 'istio-peer-exchange';
/** Istio's magic number, first 4 bytes of the prefix. */
export const PeerExchangeMagic = 0x3d230467;
const HeaderBytes = 8;
const StructTypeUrl = 'type.googleapis.com/google.protobuf.Struct';
/**
 * Bound on the payload a peer may announce. Istio's filter has none; a few hundred bytes is usual
 * (labels included), so 64 KiB leaves room without letting a peer make us buffer without end.
 */
export const MaxPeerExchangePayload = 64 * 1024;

/** This proxy's prefix: magic, length, Any{Struct{x-envoy-peer-metadata, x-envoy-peer-metadata-id}}. */
export function encodePeerExchange(nodeMetadata: Readonly<Record<string, unknown>>, nodeId: string): Buffer {
  const data: Record<string, unknown> = { [PeerMetadataHeader]: exchangedFields(nodeMetadata) };
  if (nodeId !== '') data[PeerMetadataIdHeader] = nodeId;
  const any = lookupType('google.protobuf.Any');
  const payload = any.encode(any.create({ type_url: StructTypeUrl, value: encodeMessage('google.protobuf.Struct', data) })).finish();
  const out = Buffer.allocUnsafe(HeaderBytes + payload.length);
  out.writeUInt32BE(PeerExchangeMagic, 0);
  out.writeUInt32BE(payload.length, 4);
  out.set(payload, HeaderBytes);
  return out;
}

/** What a peer's payload says: its node metadata fields and node id (either may be missing). */
export interface PeerExchangeData {
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
  readonly id: string | undefined;
}

/** Decodes a prefix payload (the Any); throws on bytes that are not Istio's Any of a Struct. */
export function decodePeerExchangePayload(payload: Uint8Array): PeerExchangeData {
  const any = lookupType('google.protobuf.Any').decode(payload) as unknown as { type_url?: string; value?: Uint8Array };
  if (any.type_url !== StructTypeUrl) throw new Error(`peer exchange payload is ${String(any.type_url)}, expected ${StructTypeUrl}`);
  const data = decodeMessage('google.protobuf.Struct', any.value ?? new Uint8Array(0)) as Record<string, unknown>;
  const md = data[PeerMetadataHeader];
  const id = data[PeerMetadataIdHeader];
  return {
    metadata: md !== null && typeof md === 'object' && !Array.isArray(md) ? (md as Record<string, unknown>) : undefined,
    id: typeof id === 'string' ? id : undefined,
  };
}

/** One step of reading the peer's prefix. */
export type PeerExchangeStep =
  /** Not enough bytes yet: feed more. */
  | { readonly state: 'more' }
  /** The prefix was read and stripped; `rest` is the application's first bytes (maybe empty). */
  | { readonly state: 'done'; readonly payload: Buffer; readonly rest: Buffer }
  /** No prefix (the magic did not match, or the length is out of bounds): `bytes` are the application's, untouched. */
  | { readonly state: 'none'; readonly bytes: Buffer };

const More: PeerExchangeStep = Object.freeze({ state: 'more' });

/**
 * Reads the peer's prefix from the first chunks of a connection. Feed chunks with `push` until it
 * says `done` or `none`; after that the reader is spent and later chunks are the application's.
 */
export class PeerExchangeReader {
  #buffered: Buffer[] = [];
  #length = 0;

  /** Adds a chunk; says whether the prefix is complete, absent, or needs more bytes. */
  push(chunk: Buffer): PeerExchangeStep {
    this.#buffered.push(chunk);
    this.#length += chunk.length;
    if (this.#length < 4) return this.#matchesSoFar() ? More : this.#none();
    const all = this.#buffered.length === 1 ? this.#buffered[0] : Buffer.concat(this.#buffered, this.#length);
    this.#buffered = [all];
    if (all.readUInt32BE(0) !== PeerExchangeMagic) return this.#none();
    if (all.length < HeaderBytes) return More;
    const size = all.readUInt32BE(4);
    if (size > MaxPeerExchangePayload) return this.#none();
    if (all.length < HeaderBytes + size) return More;
    this.#buffered = [];
    this.#length = 0;
    return { state: 'done', payload: all.subarray(HeaderBytes, HeaderBytes + size), rest: all.subarray(HeaderBytes + size) };
  }

  /**
   * The stream ended before the prefix was complete: what to pass on. Bytes that could still have
   * been the start of the magic are the application's (a 1-3 byte message); a started but
   * truncated prefix is dropped, as it is not the application's either.
   */
  end(): Buffer {
    const all = Buffer.concat(this.#buffered, this.#length);
    this.#buffered = [];
    this.#length = 0;
    return all.length < 4 ? all : Buffer.alloc(0);
  }

  #matchesSoFar(): boolean {
    const all = Buffer.concat(this.#buffered, this.#length);
    this.#buffered = [all];
    for (let i = 0; i < all.length; i++) if (all[i] !== ((PeerExchangeMagic >>> (24 - 8 * i)) & 0xff)) return false;
    return true;
  }

  #none(): PeerExchangeStep {
    const bytes = Buffer.concat(this.#buffered, this.#length);
    this.#buffered = [];
    this.#length = 0;
    return { state: 'none', bytes };
  }
}
