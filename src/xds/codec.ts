/**
 * The xDS codec: converts between our JSON form of xDS resources (Envoy's proto3 JSON with proto
 * field names, see `types.ts`) and protobuf bytes, over the shared protobufjs root. protobufjs's
 * own fromObject/toObject do not implement the proto3 JSON mapping of well-known types (Duration
 * as "1.5s", wrappers as plain values, Any with "@type", Struct as plain JSON), so this module
 * walks the precomputed field plans of `json-plan.ts` itself (codec-encode.ts, codec-decode.ts). Unknown JSON fields, wrong value
 * types and two members of one oneof are errors (`XDS_CODEC`) naming the field path: that is how
 * translation bugs surface before a proxy ever sees the resource.
 */
import { fail, type AnyBytes, type DecodeOptions, planFor } from './codec-common.ts';
import { decMessage, decodeBytes, decWkt, type Msg } from './codec-decode.ts';
import { encAny, encMessage } from './codec-encode.ts';
import { planOf } from './json-plan.ts';
import { lookupType, typeNameOfUrl } from './proto-root.ts';
import type { XdsJson } from './types.ts';

export type { AnyBytes, DecodeOptions } from './codec-common.ts';
export { lookupType, loadProtoFiles } from './proto-root.ts';

// ---------------------------------------------------------------- public API

/** Encodes a message given by full name (`envoy.config.core.v3.Node`) from our JSON form. */
export function encodeMessage(fullName: string, json: unknown): Uint8Array {
  const plan = planFor(fullName, fullName);
  return plan.type.encode(encMessage(plan, json, plan.fullName)).finish();
}

/** Decodes protobuf bytes of a message given by full name into our JSON form. */
export function decodeMessage(fullName: string, bytes: Uint8Array, opts: DecodeOptions = {}): XdsJson {
  const plan = planFor(fullName, fullName);
  return decMessage(plan, decodeBytes(plan, bytes), opts) as XdsJson;
}

/**
 * Encodes one xDS resource. `json` may carry a top-level "@type" (it must then equal `typeUrl`).
 * @example encodeResource(TypeUrl.Cluster, { name: 'c', connect_timeout: '1s' })
 */
export function encodeResource(typeUrl: string, json: XdsJson): Uint8Array {
  const t = json['@type'];
  if (t !== undefined && t !== typeUrl) fail(typeNameOfUrl(typeUrl), `"@type" is ${String(t)}, expected ${typeUrl}`);
  if (t === undefined) return encodeMessage(typeNameOfUrl(typeUrl), json);
  const { ['@type']: _drop, ...rest } = json;
  return encodeMessage(typeNameOfUrl(typeUrl), rest);
}

/** Decodes one xDS resource into our JSON form (without a top-level "@type"). */
export function decodeResource(typeUrl: string, bytes: Uint8Array): XdsJson {
  return decodeMessage(typeNameOfUrl(typeUrl), bytes);
}

/** Our JSON form with "@type" -> protobuf Any. */
export function toAny(json: XdsJson): AnyBytes {
  return encAny(json, typeof json['@type'] === 'string' ? typeNameOfUrl(json['@type']) : 'Any');
}

/** Protobuf Any -> our JSON form with "@type" (nested Anys decoded too). */
export function fromAny(any: AnyBytes): XdsJson {
  return decWkt(planOf(lookupType('google.protobuf.Any')), any as unknown as Msg, {}) as XdsJson;
}

