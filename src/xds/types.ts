/**
 * xDS vocabulary shared by the control plane and the proxy: type URLs, and the JSON form every
 * xDS resource takes in our code. That form is Envoy's proto3 JSON with the proto field names
 * (snake_case, exactly as in Envoy's docs and `/config_dump`): durations as strings ("1.5s"),
 * wrapper types (UInt32Value...) as plain values, `google.protobuf.Any` as
 * `{ "@type": "type.googleapis.com/...", ...fields }`, Struct as plain JSON. The codec
 * (`codec.ts`) converts between this form and protobuf bytes; nothing else touches bytes.
 */

export const TypeUrl = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

export type XdsTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** A resource in proto3 JSON form (see module doc). */
export type XdsJson = { readonly [field: string]: unknown };

/** The order Envoy wants resources applied in: clusters and endpoints warm before listeners and routes use them. */
export const WarmingOrder: readonly XdsTypeUrl[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.Secret,
];

/** Everything one proxy is sent: per type URL, resources by name. */
export type XdsResourceSet = ReadonlyMap<XdsTypeUrl, ReadonlyMap<string, XdsJson>>;
