/**
 * The ADS wire contract shared by the control plane's server and the proxy's client: the four
 * discovery messages in our JSON form (resources left as raw `Any` bytes, so one undecodable
 * resource is NACKed by the receiver instead of killing the stream in the deserializer), their
 * gRPC serializers, and the `AggregatedDiscoveryService` service definition built from them
 * (no codegen). Clients: `grpc.makeGenericClientConstructor(adsServiceDefinition, 'ADS')`.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { decodeMessage, encodeMessage, type AnyBytes } from './codec.ts';
import { kFramed } from './grpc-framing.ts';

/** `google.rpc.Status` as carried in a NACK's error_detail. */
export interface RpcStatusJson {
  code?: number;
  message?: string;
  details?: AnyBytes[];
}

/** The xDS Node (subset we read and write; metadata is plain JSON). */
export interface NodeJson {
  id?: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  user_agent_name?: string;
  user_agent_version?: string;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  client_features?: string[];
  /** Extensions the client was built with (Envoy lists them; the control plane checks for Istio's). */
  extensions?: { name?: string; category?: string; type_urls?: string[] }[];
}

/** envoy.service.discovery.v3.DiscoveryRequest (SotW). */
export interface DiscoveryRequestMsg {
  version_info?: string;
  node?: NodeJson;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: RpcStatusJson;
}

/** envoy.service.discovery.v3.DiscoveryResponse (SotW). */
export interface DiscoveryResponseMsg {
  version_info?: string;
  resources?: AnyBytes[];
  type_url?: string;
  nonce?: string;
  control_plane?: { identifier?: string };
}

/** envoy.service.discovery.v3.DeltaDiscoveryRequest. */
export interface DeltaDiscoveryRequestMsg {
  node?: NodeJson;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: RpcStatusJson;
}

/** envoy.service.discovery.v3.Resource (one entry of a delta response). */
export interface DeltaResourceMsg {
  name?: string;
  aliases?: string[];
  version?: string;
  resource?: AnyBytes;
  ttl?: string;
}

/** envoy.service.discovery.v3.DeltaDiscoveryResponse. */
export interface DeltaDiscoveryResponseMsg {
  system_version_info?: string;
  resources?: DeltaResourceMsg[];
  type_url?: string;
  removed_resources?: string[];
  nonce?: string;
  control_plane?: { identifier?: string };
}

/** gRPC (de)serializer pair for one message. */
export interface WireCodec<T> {
  serialize(msg: T): Buffer;
  deserialize(buf: Buffer): T;
}

/**
 * A DiscoveryResponse may carry its `resources` already encoded under this key (see
 * `encodeResourcesField`): the same list goes to many streams, and only version and nonce differ,
 * so encoding it once and appending the per-stream fields saves a copy of every resource per
 * stream. Protobuf lets fields come in any order and concatenated encodings merge.
 */
export const kEncodedResources: unique symbol = Symbol('trellis.encodedResources');

/** The encoded `resources` field (field 2 of DiscoveryResponse) for a list of Any resources. */
export function encodeResourcesField(resources: readonly AnyBytes[]): Buffer {
  const bytes = encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', { resources });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A message already serialized whole (a DiscoveryResponse identical for many streams: same
 * resources, version and shared nonce): `serialize` returns these bytes as they are, so a push
 * to 1,000 streams costs one encoding and no per-stream copy before grpc-js frames it.
 */
export const kSerialized: unique symbol = Symbol('trellis.serialized');

/**
 * A response to write as already framed bytes (see grpc-framing.ts): grpc-js sends `framed` as it
 * is where the pass-through is installed; otherwise `serialize` returns the message inside it.
 */
export function preFramed<T>(framed: Buffer): T {
  return { [kFramed]: framed, [kSerialized]: framed.subarray(5) } as T;
}

function wire<T>(fullName: string): WireCodec<T> {
  return {
    serialize(msg: T): Buffer {
      const whole = (msg as { [kSerialized]?: Buffer })[kSerialized];
      if (whole !== undefined) return whole;
      const pre = (msg as { [kEncodedResources]?: Buffer })[kEncodedResources];
      if (pre !== undefined) {
        const { resources: _omit, ...rest } = msg as unknown as Record<string, unknown>;
        void _omit;
        const head = encodeMessage(fullName, rest);
        return Buffer.concat([Buffer.from(head.buffer, head.byteOffset, head.byteLength), pre]);
      }
      const bytes = encodeMessage(fullName, msg);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize(buf: Buffer): T {
      return decodeMessage(fullName, buf, { rawAny: true }) as T;
    },
  };
}

const pkg = 'envoy.service.discovery.v3';
export const discoveryRequestWire: WireCodec<DiscoveryRequestMsg> = wire(`${pkg}.DiscoveryRequest`);
export const discoveryResponseWire: WireCodec<DiscoveryResponseMsg> = wire(`${pkg}.DiscoveryResponse`);
export const deltaDiscoveryRequestWire: WireCodec<DeltaDiscoveryRequestMsg> = wire(`${pkg}.DeltaDiscoveryRequest`);
export const deltaDiscoveryResponseWire: WireCodec<DeltaDiscoveryResponseMsg> = wire(`${pkg}.DeltaDiscoveryResponse`);

/** A state-of-the-world discovery stream method at `path` (ADS, or a single-type service such as SDS). */
export function sotwStreamMethod(path: string, originalName: string): ServiceDefinition[string] {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: discoveryRequestWire.serialize,
    requestDeserialize: discoveryRequestWire.deserialize,
    responseSerialize: discoveryResponseWire.serialize,
    responseDeserialize: discoveryResponseWire.deserialize,
    originalName,
  };
}

/** Service definition for grpc-js `server.addService` and `makeGenericClientConstructor`. */
export const adsServiceDefinition: ServiceDefinition = {
  StreamAggregatedResources: sotwStreamMethod(`/${pkg}.AggregatedDiscoveryService/StreamAggregatedResources`, 'streamAggregatedResources'),
  DeltaAggregatedResources: {
    path: `/${pkg}.AggregatedDiscoveryService/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: deltaDiscoveryRequestWire.serialize,
    requestDeserialize: deltaDiscoveryRequestWire.deserialize,
    responseSerialize: deltaDiscoveryResponseWire.serialize,
    responseDeserialize: deltaDiscoveryResponseWire.deserialize,
    originalName: 'deltaAggregatedResources',
  },
};
