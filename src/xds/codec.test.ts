import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../errors.ts';
import {
  discoveryRequestWire,
  discoveryResponseWire,
  deltaDiscoveryResponseWire,
} from './ads-wire.ts';
import { decodeMessage, decodeResource, encodeMessage, encodeResource, fromAny, lookupType, toAny } from './codec.ts';
import { TypeUrl, type XdsJson } from './types.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

function roundTrip(typeUrl: string, json: XdsJson): XdsJson {
  return decodeResource(typeUrl, encodeResource(typeUrl, json));
}

test('cluster: durations, wrappers, enums, oneof, repeated, nested messages', () => {
  const cluster = {
    name: 'outbound|80||reviews.default.svc.cluster.local',
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: 'reviews' },
    connect_timeout: '1.500s',
    per_connection_buffer_limit_bytes: 32768,
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: { thresholds: [{ priority: 'HIGH', max_connections: 100, max_retries: 0, track_remaining: true }] },
    common_lb_config: { healthy_panic_threshold: { value: 25 } },
    outlier_detection: { consecutive_5xx: 5, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 },
  };
  const back = roundTrip(TypeUrl.Cluster, cluster);
  assert.deepEqual(back, cluster);
});

test('durations: fractional, negative, zero, and normalised forms', () => {
  const enc = (d: string) => decodeMessage('google.protobuf.Duration', encodeMessage('google.protobuf.Duration', d));
  assert.equal(enc('1.5s'), '1.500s');
  assert.equal(enc('0s'), '0s');
  assert.equal(enc('-0.25s'), '-0.250s');
  assert.equal(enc('3.000001s'), '3.000001s');
  assert.equal(enc('1.000000002s'), '1.000000002s');
  assert.equal(enc('315576000000s'), '315576000000s');
  assert.throws(() => encodeMessage('google.protobuf.Duration', '1m'), (e) => hasCode(e, 'XDS_CODEC'));
  assert.throws(() => encodeMessage('google.protobuf.Duration', 5), /expected a duration/);
});

test('timestamp round trip', () => {
  const t = decodeMessage('google.protobuf.Timestamp', encodeMessage('google.protobuf.Timestamp', '2024-02-03T04:05:06.5+01:00'));
  assert.equal(t, '2024-02-03T03:05:06.500Z');
});

test('listener with nested Any: HCM inside a filter, router inside HCM; Struct metadata', () => {
  const listener = {
    name: 'virtualInbound',
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    metadata: { filter_metadata: { istio: { config: 'a/b', nested: { list: [1, 'two', true, null], n: 1.5 } } } },
    filter_chains: [
      {
        filter_chain_match: { destination_port: 8080, transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'inbound_0.0.0.0_8080',
              codec_type: 'HTTP2',
              rds: { route_config_name: '8080', config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [
                {
                  name: 'envoy.filters.http.fault',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
                    delay: { fixed_delay: '0.100s', percentage: { numerator: 50, denominator: 'MILLION' } },
                  },
                },
                { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER, suppress_envoy_headers: true } },
              ],
              use_remote_address: false,
              stream_idle_timeout: '0s',
            },
          },
        ],
      },
    ],
    listener_filters: [
      { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } },
    ],
    traffic_direction: 'INBOUND',
  };
  const back = roundTrip(TypeUrl.Listener, listener);
  assert.deepEqual(back, listener);
  // Wrapper `use_remote_address: false` survives (presence), plain proto3 `false` would not.
  const hcm = ((back.filter_chains as XdsJson[])[0].filters as XdsJson[])[0].typed_config as XdsJson;
  assert.equal(hcm.use_remote_address, false);
});

test('route configuration: maps, weighted clusters, regex, retry policy', () => {
  const rc = {
    name: '80',
    virtual_hosts: [
      {
        name: 'reviews:80',
        domains: ['reviews', 'reviews.default.svc.cluster.local'],
        routes: [
          {
            match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
            route: {
              weighted_clusters: { clusters: [{ name: 'a', weight: 90 }, { name: 'b', weight: 10 }] },
              timeout: '0s',
              retry_policy: { retry_on: '5xx,connect-failure', num_retries: 2, per_try_timeout: '2s' },
            },
            typed_per_filter_config: {
              'envoy.filters.http.fault': {
                '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
                abort: { http_status: 503, percentage: { numerator: 100 } },
              },
            },
          },
          { match: { safe_regex: { regex: '^/api/.*' } }, direct_response: { status: 404, body: { inline_string: 'nope' } } },
        ],
      },
    ],
    validate_clusters: false,
  };
  assert.deepEqual(roundTrip(TypeUrl.RouteConfiguration, rc), rc);
});

test('endpoints with locality, weights, 64-bit and bytes', () => {
  const cla = {
    cluster_name: 'reviews',
    endpoints: [
      {
        locality: { region: 'us', zone: 'us-a' },
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 9080 } } }, load_balancing_weight: 3, health_status: 'HEALTHY' },
        ],
        load_balancing_weight: 3,
        priority: 1,
      },
    ],
  };
  assert.deepEqual(roundTrip(TypeUrl.ClusterLoadAssignment, cla), cla);
  // int64 beyond 2^53 stays a string; safe values are numbers.
  const big = { max_requests_per_connection: 5 };
  assert.deepEqual(roundTrip(TypeUrl.Cluster, { name: 'x', ...big }), { name: 'x', ...big });
  const lim = decodeMessage('google.protobuf.UInt64Value', encodeMessage('google.protobuf.UInt64Value', '18446744073709551615'));
  assert.equal(lim, '18446744073709551615');
  assert.equal(decodeMessage('google.protobuf.Int64Value', encodeMessage('google.protobuf.Int64Value', '42')), 42);
  const secret = { name: 's', generic_secret: { secret: { inline_bytes: Buffer.from('hi\x00there').toString('base64') } } };
  assert.deepEqual(roundTrip(TypeUrl.Secret, secret), secret);
});

test('typed structs and upstream http protocol options in Any', () => {
  const ts = {
    '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
    type_url: 'type.googleapis.com/trellis.filters.http.stats.v1.Stats',
    value: { a: 1, b: ['x'] },
  };
  assert.deepEqual(fromAny(toAny(ts)), ts);
  const opts = {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 100 } },
  };
  assert.deepEqual(fromAny(toAny(opts)), opts);
  // Well-known types inside an Any carry their JSON under "value".
  const wrapped = { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '2s' };
  assert.deepEqual(fromAny(toAny(wrapped)), wrapped);
});

test('float fields decode to their shortest decimal', () => {
  const cluster = { name: 'x', common_lb_config: { healthy_panic_threshold: { value: 12.5 } }, lb_subset_config: {} };
  assert.deepEqual(roundTrip(TypeUrl.Cluster, cluster), cluster);
});

test('errors name the field path: unknown field, nested unknown field, bad types, oneof conflicts', () => {
  const cases: Array<[XdsJson, RegExp]> = [
    [{ name: 'x', conect_timeout: '1s' }, /Cluster\.conect_timeout: unknown field 'conect_timeout'/],
    [{ name: 'x', connect_timeout: 1 }, /connect_timeout: expected a duration/],
    [{ name: 'x', type: 'EDZ' }, /type: unknown DiscoveryType value 'EDZ'/],
    [{ name: 'x', type: 'EDS', cluster_type: { name: 'y' } }, /oneof 'cluster_discovery_type'/],
    [{ name: 'x', per_connection_buffer_limit_bytes: -1 }, /expected an integer \(uint32\)/],
    [{ name: 'x', circuit_breakers: { thresholds: [{ max_conections: 1 }] } }, /circuit_breakers\.thresholds\[0\]\.max_conections: unknown field/],
    [{ name: 'x', transport_socket_matches: {} }, /expected an array/],
  ];
  for (const [json, re] of cases) {
    assert.throws(() => encodeResource(TypeUrl.Cluster, json), (e: unknown) => hasCode(e, 'XDS_CODEC') && re.test((e as Error).message), String(re));
  }
  const badAny = { name: 'l', filter_chains: [{ filters: [{ name: 'h', typed_config: { '@type': HCM, stat_prefx: 'x' } }] }] };
  assert.throws(() => encodeResource(TypeUrl.Listener, badAny), /filter_chains\[0\]\.filters\[0\]\.typed_config\.stat_prefx: unknown field/);
  assert.throws(
    () => encodeResource(TypeUrl.Listener, { name: 'l', filter_chains: [{ filters: [{ name: 'h', typed_config: { '@type': 'type.googleapis.com/no.such.Type' } }] }] }),
    /unknown type 'no.such.Type'/,
  );
  assert.throws(() => encodeResource(TypeUrl.Listener, { name: 'l', filter_chains: [{ filters: [{ name: 'h', typed_config: { stat_prefix: 'x' } }] }] }), /Any without "@type"/);
  assert.throws(() => encodeResource(TypeUrl.Cluster, { '@type': TypeUrl.Listener, name: 'x' }), /"@type" is/);
  assert.throws(() => decodeResource(TypeUrl.Cluster, new Uint8Array([0x0a, 0xff])), (e) => hasCode(e, 'XDS_CODEC'));
  assert.throws(() => lookupType('no.such.Thing'), (e) => hasCode(e, 'XDS_UNKNOWN_TYPE'));
});

test('camelCase json names are accepted on input; null and undefined mean unset', () => {
  const back = roundTrip(TypeUrl.Cluster, { name: 'x', connectTimeout: '2s', lb_policy: null, transport_socket_matches: undefined });
  assert.deepEqual(back, { name: 'x', connect_timeout: '2s' });
});

test('"@type" at the top level of a resource is accepted when it matches', () => {
  assert.deepEqual(roundTrip(TypeUrl.Cluster, { '@type': TypeUrl.Cluster, name: 'x' }), { name: 'x' });
});

test('ADS messages: request with node metadata and NACK detail; responses keep resources as raw Any', () => {
  const req = {
    version_info: '3',
    node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'a' } } },
    resource_names: ['a', 'b'],
    type_url: TypeUrl.RouteConfiguration,
    response_nonce: 'n1',
    error_detail: { code: 3, message: 'bad route' },
  };
  assert.deepEqual(discoveryRequestWire.deserialize(discoveryRequestWire.serialize(req)), req);
  const any = toAny({ '@type': TypeUrl.Cluster, name: 'c1' });
  const res = discoveryResponseWire.deserialize(discoveryResponseWire.serialize({ version_info: '1', type_url: TypeUrl.Cluster, nonce: '7', resources: [any] }));
  assert.equal(res.resources?.[0].type_url, TypeUrl.Cluster);
  assert.deepEqual(fromAny(res.resources![0]), { '@type': TypeUrl.Cluster, name: 'c1' });
  const delta = deltaDiscoveryResponseWire.deserialize(
    deltaDiscoveryResponseWire.serialize({ type_url: TypeUrl.Cluster, nonce: '1', resources: [{ name: 'c1', version: 'v1', resource: any }], removed_resources: ['old'] }),
  );
  assert.deepEqual(delta.removed_resources, ['old']);
  assert.equal(delta.resources?.[0].version, 'v1');
});

test('proto3 defaults are omitted on decode, like Envoy config_dump; wrappers keep explicit zeros', () => {
  const back = roundTrip(TypeUrl.Cluster, { name: 'x', lb_policy: 'ROUND_ROBIN', per_connection_buffer_limit_bytes: 0, respect_dns_ttl: false });
  // The wrapper keeps its explicit 0; the plain bool and the enum's first value are defaults.
  assert.deepEqual(back, { name: 'x', per_connection_buffer_limit_bytes: 0 });
});
