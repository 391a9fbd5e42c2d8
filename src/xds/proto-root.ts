/**
 * The one protobufjs Root holding every Envoy / xds / udpa / googleapis message we encode or decode,
 * from the `.proto` files shipped in `@grpc/grpc-js-xds/deps/` (no codegen). The list of files is
 * the single place to extend when translation starts using another typed extension in an `Any`:
 * add its `.proto` path to `protoFiles` (or call `loadProtoFiles` at startup for protos that live
 * elsewhere, e.g. our own `trellis.*` filter configs).
 * The root builds a type when it is first looked up (lazy-root.ts): a proxy decodes a fraction of
 * these types, and building all of them cost every process ~5 MB of heap. What it builds from is
 * an index of each type's JSON, made from the parsed .proto files. Parsing the .proto text costs
 * 100-250 ms of CPU, so the build (scripts/build-dist.ts) stores the index beside the compiled
 * module (`proto-root.json`), keyed by this file list and the two packages' versions; a process
 * uses it when the key matches and parses the .proto files otherwise (the sources, or a stale file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { TrellisError } from '../errors.ts';
import { indexTypes, LazyRoot, type TypeIndex } from './lazy-root.ts';

const require = createRequire(import.meta.url);
const xdsDeps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));

/** Directories import paths are resolved against, in order. */
export const protoIncludeDirs: readonly string[] = [
  join(xdsDeps, 'envoy-api'),
  join(xdsDeps, 'xds'),
  join(xdsDeps, 'googleapis'),
  join(xdsDeps, 'protoc-gen-validate'),
  // google/protobuf/descriptor.proto (needed by the option annotations) ships with protobufjs.
  protobufjsDir,
  // Our own filter configs (package trellis.*).
  join(dirname(fileURLToPath(import.meta.url)), 'proto'),
];

/** Every proto file loaded into the shared root (their imports come along). */
export const protoFiles: readonly string[] = [
  // ADS and the core resource types.
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  // The ext_authz check API (the proxy calls an authorizer for AuthorizationPolicy CUSTOM).
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  // Network filters.
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/direct_response/v3/config.proto',
  'envoy/extensions/filters/network/connection_limit/v3/connection_limit.proto',
  // HTTP filters.
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/dynamic_forward_proxy/v3/dynamic_forward_proxy.proto',
  'envoy/extensions/clusters/dynamic_forward_proxy/v3/cluster.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/grpc_stats/v3/config.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/health_check/v3/health_check.proto',
  'envoy/extensions/filters/http/grpc_web/v3/grpc_web.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  // RBAC path templates (AuthorizationPolicy paths with {*} / {**}).
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
  'envoy/extensions/filters/http/compressor/v3/compressor.proto',
  'envoy/extensions/compression/gzip/compressor/v3/gzip.proto',
  'envoy/extensions/filters/http/header_to_metadata/v3/header_to_metadata.proto',
  'envoy/extensions/filters/http/lua/v3/lua.proto',
  'envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto',
  'envoy/extensions/filters/http/set_metadata/v3/set_metadata.proto',
  'envoy/extensions/filters/http/stateful_session/v3/stateful_session.proto',
  'envoy/extensions/http/stateful_session/cookie/v3/cookie.proto',
  // Retry plugins Istio (and our route translation) put on every retry policy.
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  // Tracers and access loggers (telemetry: HCM tracing.provider, access_log).
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  // Listener filters.
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto',
  // Transport sockets besides TLS.
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/transport_sockets/internal_upstream/v3/internal_upstream.proto',
  'envoy/extensions/transport_sockets/tcp_stats/v3/tcp_stats.proto',
  // Retry extensions Istio routes use (retry_host_predicate, retry_priority).
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  // Upstreams and clusters.
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/config/rbac/v3/rbac.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  // Load balancing policies gRPC clients understand.
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  'envoy/extensions/load_balancing_policies/client_side_weighted_round_robin/v3/client_side_weighted_round_robin.proto',
  'envoy/extensions/load_balancing_policies/pick_first/v3/pick_first.proto',
  // Access logs and tracing referenced from HCM configs.
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  // Typed structs (opaque configs for filters with no proto here).
  'xds/type/v3/typed_struct.proto',
  'udpa/type/v1/typed_struct.proto',
  'google/rpc/status.proto',
  'google/protobuf/field_mask.proto',
  'google/protobuf/empty.proto',
  'google/protobuf/timestamp.proto',
  // Trellis's own filter configs.
  'trellis/filters/http/stats/v1/stats.proto',
];

let root: LazyRoot | undefined;

function resolvePath(origin: string, target: string): string | null {
  if (isAbsolute(target) && existsSync(target)) return target;
  for (const dir of protoIncludeDirs) {
    const candidate = join(dir, target);
    if (existsSync(candidate)) return candidate;
  }
  // Let protobufjs fall back to its bundled well-known types (any.proto, duration.proto...).
  return target;
}

/** Where the build writes the type index (next to this module; absent beside the sources). */
export const prebuiltRootFile = fileURLToPath(new URL('./proto-root.json', import.meta.url));

/** What the prebuilt index must have been built from to be used. */
export function prebuiltKey(): string {
  const version = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;
  return JSON.stringify({ files: protoFiles, xds: version('@grpc/grpc-js-xds'), protobufjs: version('protobufjs') });
}

/** Parses `files` (and their imports) from the .proto text into a fully resolved root. */
function parseFiles(files: readonly string[], what: string): protobuf.Root {
  const r = new protobuf.Root();
  r.resolvePath = resolvePath;
  try {
    r.loadSync([...files], { keepCase: true });
    r.resolveAll();
  } catch (err) {
    throw new TrellisError('XDS_PROTO_LOAD', `loading ${what}: ${(err as Error).message}`, { cause: err });
  }
  return r;
}

/** Parses every file of `protoFiles` (and their imports) from the .proto text. */
export function parseProtoRoot(): protobuf.Root {
  return parseFiles(protoFiles, 'xDS protos');
}

/** The type index as the build stores it: `{ key, types }` JSON. */
export function prebuiltRootJson(r: protobuf.Root = parseProtoRoot()): string {
  return JSON.stringify({ key: prebuiltKey(), types: indexTypes(r) });
}

/** A lazy root over the index in `file` when it was built from the current protos, else undefined. */
export function loadPrebuiltRoot(file = prebuiltRootFile): LazyRoot | undefined {
  let stored: { key?: string; types?: TypeIndex };
  try {
    stored = JSON.parse(readFileSync(file, 'utf8')) as typeof stored;
  } catch {
    return undefined;
  }
  if (stored.key !== prebuiltKey() || stored.types === undefined) return undefined;
  return new LazyRoot(stored.types);
}

/** The shared root, made on first call (once per process); its types are built as looked up. */
export function protoRoot(): LazyRoot {
  root ??= loadPrebuiltRoot() ?? new LazyRoot(indexTypes(parseProtoRoot()));
  return root;
}

/** Loads more `.proto` files (absolute, or relative to the include dirs) into the shared root. */
export function loadProtoFiles(files: readonly string[]): void {
  protoRoot().addIndex(indexTypes(parseFiles(files, `protos ${files.join(', ')}`)));
}

/** The message type with that full name (no leading dot), or a XDS_UNKNOWN_TYPE error. */
export function lookupType(fullName: string): protobuf.Type {
  const name = fullName.startsWith('.') ? fullName.slice(1) : fullName;
  const found = protoRoot().exact(name);
  if (!(found instanceof protobuf.Type)) {
    throw new TrellisError('XDS_UNKNOWN_TYPE', `unknown protobuf message type '${name}'`, { context: { type: name } });
  }
  return found;
}

/** The message full name a type URL names (`type.googleapis.com/a.b.C` -> `a.b.C`). */
export function typeNameOfUrl(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}
