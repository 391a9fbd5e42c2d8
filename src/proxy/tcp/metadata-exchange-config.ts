/**
 * Istio's `istio.metadata_exchange` network filter as config: on a listener's filter chain (before
 * tcp_proxy, the server side) and in a cluster's `filters` (an upstream network filter, the client
 * side), as istiod sends them. Its only setting we act on is `protocol`, the ALPN value that turns
 * the exchange on (`istio-peer-exchange`); `enable_discovery` (look the peer up in Istio's workload
 * discovery when it sent nothing) has no source here and is accepted and ignored. The exchange
 * itself runs in the TCP proxy (tcp-proxy.ts) with the codec of telemetry/peer-exchange.ts.
 */
import type { XdsJson } from '../../xds/types.ts';
import { child, configError, isObj, optObj, optStr } from '../xds-json.ts';

export const MetadataExchangeFilterName = 'istio.metadata_exchange';
export const MetadataExchangeType = 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange';
const TypedStructTypes = new Set(['type.googleapis.com/xds.type.v3.TypedStruct', 'type.googleapis.com/udpa.type.v1.TypedStruct']);

/**
 * The `protocol` of a network filter that is Istio's metadata exchange (its config typed directly
 * or as a TypedStruct, as istiod sends it); undefined for any other filter. Throws (NACK) on a
 * metadata exchange filter without a protocol.
 */
export function metadataExchangeProtocol(filter: XdsJson, at: string): string | undefined {
  const typedAt = child(at, 'typed_config');
  const typed = optObj(filter.typed_config, typedAt);
  if (typed === undefined) return undefined;
  let config: XdsJson | undefined;
  let configAt = typedAt;
  if (typed['@type'] === MetadataExchangeType) config = typed;
  else if (TypedStructTypes.has(String(typed['@type'])) && typed.type_url === MetadataExchangeType) {
    configAt = child(typedAt, 'value');
    const value = typed.value ?? {};
    if (!isObj(value)) configError(configAt, 'expected an object');
    config = value;
  }
  if (config === undefined) return undefined;
  const protocol = optStr(config.protocol, child(configAt, 'protocol'));
  if (protocol === undefined || protocol === '') configError(child(configAt, 'protocol'), 'the metadata exchange needs its ALPN protocol (istio-peer-exchange)');
  return protocol;
}
