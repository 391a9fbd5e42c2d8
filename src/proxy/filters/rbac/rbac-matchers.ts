/**
 * Envoy's RBAC matchers (envoy.config.rbac.v3 Permission and Principal) compiled once into
 * predicates over one request's facts (`RbacInput`): and/or/not, any, header (via the route
 * HeaderMatcher, so repeated headers and pseudo-headers behave as in routing), url_path (the path
 * without query and fragment), uri_template (Envoy's path templates), destination ip/port/range,
 * requested_server_name, authenticated principal_name (the peer certificate's URI SAN), direct
 * and XFF remote IP, and dynamic metadata matchers (MetadataMatcher with Envoy's ValueMatcher,
 * e.g. JWT claims written by jwt_authn). Filters that are unknown here are config errors (NACK)
 * rather than silently matching nothing.
 */
import { BlockList, isIPv6 } from 'node:net';
import { configError, optArr, optBool, optObj, optStr, optUint } from '../../http/config-json.ts';
import { compileHeaderMatcher, compileStringMatcher, type HeaderSource, type StringMatch } from '../../http/matchers.ts';
import { compileUriTemplate } from './uri-template.ts';

/** The facts of one request (HTTP) or connection (TCP) that RBAC matches on. */
export interface RbacInput {
  /** Request headers and pseudo-headers; undefined on a TCP connection. */
  readonly http: HeaderSource | undefined;
  /** The connection's peer address. */
  readonly directRemoteIp: string;
  /** The client address after x-forwarded-for processing (equals directRemoteIp on TCP). */
  readonly remoteIp: string;
  readonly destinationIp: string;
  readonly destinationPort: number;
  /** TLS SNI of the downstream connection. */
  readonly sni: string | undefined;
  /** The verified peer certificate's identity; undefined on plaintext or without a client certificate. */
  readonly peerPrincipal: string | undefined;
  /** Dynamic metadata by filter namespace (JWT payloads, RBAC shadow results). */
  readonly metadata: (namespace: string) => Readonly<Record<string, unknown>> | undefined;
}

/** A compiled permission or principal. */
export type RbacMatch = (input: RbacInput) => boolean;

const always: RbacMatch = () => true;

function cidr(v: unknown, path: string): (ip: string) => boolean {
  const o = optObj(v, path) ?? configError(path, 'a CidrRange is required');
  const addr = optStr(o.address_prefix, `${path}.address_prefix`) ?? configError(`${path}.address_prefix`, 'is required');
  const v6 = isIPv6(addr);
  const len = optUint(o.prefix_len, `${path}.prefix_len`) ?? (v6 ? 128 : 32);
  const list = new BlockList();
  try {
    list.addSubnet(addr, len, v6 ? 'ipv6' : 'ipv4');
  } catch (err) {
    configError(path, `invalid CIDR ${addr}/${len}`, err);
  }
  return (ip) => ip !== '' && list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}

function cidrOn(v: unknown, path: string, pick: (i: RbacInput) => string): RbacMatch {
  const m = cidr(v, path);
  return (i) => m(pick(i));
}

/** The path without query and fragment (Envoy's PathUtil::removeQueryAndFragment). */
export function pathOnly(path: string): string {
  let end = path.length;
  const q = path.indexOf('?');
  if (q >= 0) end = q;
  const h = path.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return end === path.length ? path : path.slice(0, end);
}

function urlPath(v: unknown, path: string): RbacMatch {
  const o = optObj(v, path) ?? configError(path, 'a PathMatcher is required');
  const sm = compileStringMatcher(o.path, `${path}.path`);
  return (i) => i.http !== undefined && sm(pathOnly(i.http.path));
}

function header(v: unknown, path: string): RbacMatch {
  const m = compileHeaderMatcher(v, path);
  return (i) => i.http !== undefined && m(i.http);
}

function uriTemplate(v: unknown, path: string): RbacMatch {
  const o = optObj(v, path) ?? configError(path, 'a TypedExtensionConfig is required');
  const typed = optObj(o.typed_config, `${path}.typed_config`) ?? configError(`${path}.typed_config`, 'is required');
  const t = optStr(typed['@type'], `${path}.typed_config.@type`);
  if (t !== 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig') configError(`${path}.typed_config`, `unsupported path matcher ${String(t)}`);
  const template = optStr(typed.path_template, `${path}.typed_config.path_template`) ?? configError(`${path}.typed_config.path_template`, 'is required');
  const re = compileUriTemplate(template, `${path}.typed_config.path_template`);
  return (i) => i.http !== undefined && re.test(pathOnly(i.http.path));
}

/** A compiled envoy.type.matcher.v3.ValueMatcher over a metadata value. */
type ValueMatch = (value: unknown) => boolean;

function valueMatcher(v: unknown, path: string): ValueMatch {
  const o = optObj(v, path) ?? configError(path, 'a ValueMatcher is required');
  if (o.null_match !== undefined) return (x) => x === null || x === undefined;
  if (o.present_match !== undefined) {
    const want = optBool(o.present_match, `${path}.present_match`) ?? false;
    // Envoy: present means a primitive value (not a struct or list) is at the path.
    return (x) => want && x !== undefined && x !== null && typeof x !== 'object';
  }
  if (o.bool_match !== undefined) {
    const b = optBool(o.bool_match, `${path}.bool_match`);
    return (x) => x === b;
  }
  if (o.double_match !== undefined) {
    const d = optObj(o.double_match, `${path}.double_match`) ?? {};
    if (d.exact !== undefined) {
      const e = Number(d.exact);
      return (x) => typeof x === 'number' && x === e;
    }
    const r = optObj(d.range, `${path}.double_match.range`) ?? configError(`${path}.double_match`, 'exact or range is required');
    const start = Number(r.start ?? -Infinity);
    const end = Number(r.end ?? Infinity);
    return (x) => typeof x === 'number' && x >= start && x < end;
  }
  if (o.string_match !== undefined) {
    const sm = compileStringMatcher(o.string_match, `${path}.string_match`);
    return (x) => typeof x === 'string' && sm(x);
  }
  if (o.list_match !== undefined) {
    const l = optObj(o.list_match, `${path}.list_match`) ?? {};
    const one = valueMatcher(l.one_of, `${path}.list_match.one_of`);
    return (x) => Array.isArray(x) && x.some(one);
  }
  if (o.or_match !== undefined) {
    const or = optObj(o.or_match, `${path}.or_match`) ?? {};
    const list = optArr(or.value_matchers, `${path}.or_match.value_matchers`).map((m, i) => valueMatcher(m, `${path}.or_match.value_matchers[${i}]`));
    if (list.length < 2) configError(`${path}.or_match.value_matchers`, 'needs at least 2 matchers');
    return (x) => list.some((m) => m(x));
  }
  return configError(path, 'one of null_match, double_match, string_match, bool_match, present_match, list_match, or_match is required');
}

/** Compile an envoy.type.matcher.v3.MetadataMatcher. */
export function compileMetadataMatcher(v: unknown, path: string): RbacMatch {
  const o = optObj(v, path) ?? configError(path, 'a MetadataMatcher is required');
  const filter = optStr(o.filter, `${path}.filter`) ?? configError(`${path}.filter`, 'is required');
  const keys = optArr(o.path, `${path}.path`).map((s, i) => {
    const seg = optObj(s, `${path}.path[${i}]`) ?? {};
    return optStr(seg.key, `${path}.path[${i}].key`) ?? configError(`${path}.path[${i}].key`, 'is required');
  });
  if (keys.length === 0) configError(`${path}.path`, 'at least one key is required');
  const value = valueMatcher(o.value, `${path}.value`);
  const invert = optBool(o.invert, `${path}.invert`) ?? false;
  return (i) => {
    let cur: unknown = i.metadata(filter);
    for (const k of keys) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) {
        cur = undefined;
        break;
      }
      cur = (cur as Record<string, unknown>)[k];
    }
    return value(cur) !== invert;
  };
}

function list(v: unknown, field: string, path: string, each: (x: unknown, p: string) => RbacMatch): RbacMatch[] {
  const o = optObj(v, path) ?? configError(path, 'expected a Set');
  const items = optArr(o[field], `${path}.${field}`).map((x, i) => each(x, `${path}.${field}[${i}]`));
  if (items.length === 0) configError(`${path}.${field}`, 'must not be empty');
  return items;
}

function every(ms: readonly RbacMatch[]): RbacMatch {
  if (ms.length === 1) return ms[0];
  return (i) => {
    for (const m of ms) if (!m(i)) return false;
    return true;
  };
}

function some(ms: readonly RbacMatch[]): RbacMatch {
  if (ms.length === 1) return ms[0];
  return (i) => {
    for (const m of ms) if (m(i)) return true;
    return false;
  };
}

/** Compile an envoy.config.rbac.v3.Permission. */
export function compilePermission(v: unknown, path: string): RbacMatch {
  const o = optObj(v, path) ?? configError(path, 'a Permission is required');
  if (o.and_rules !== undefined) return every(list(o.and_rules, 'rules', `${path}.and_rules`, compilePermission));
  if (o.or_rules !== undefined) return some(list(o.or_rules, 'rules', `${path}.or_rules`, compilePermission));
  if (o.any !== undefined) {
    if (optBool(o.any, `${path}.any`) !== true) configError(`${path}.any`, 'must be true');
    return always;
  }
  if (o.not_rule !== undefined) {
    const inner = compilePermission(o.not_rule, `${path}.not_rule`);
    return (i) => !inner(i);
  }
  if (o.header !== undefined) return header(o.header, `${path}.header`);
  if (o.url_path !== undefined) return urlPath(o.url_path, `${path}.url_path`);
  if (o.uri_template !== undefined) return uriTemplate(o.uri_template, `${path}.uri_template`);
  if (o.destination_ip !== undefined) return cidrOn(o.destination_ip, `${path}.destination_ip`, (i) => i.destinationIp);
  if (o.destination_port !== undefined) {
    const p = optUint(o.destination_port, `${path}.destination_port`);
    return (i) => i.destinationPort === p;
  }
  if (o.destination_port_range !== undefined) {
    const r = optObj(o.destination_port_range, `${path}.destination_port_range`) ?? {};
    const start = Number(r.start ?? 0);
    const end = Number(r.end ?? 0);
    return (i) => i.destinationPort >= start && i.destinationPort < end;
  }
  if (o.requested_server_name !== undefined) {
    const sm = compileStringMatcher(o.requested_server_name, `${path}.requested_server_name`);
    return (i) => sm(i.sni ?? '');
  }
  if (o.metadata !== undefined) return compileMetadataMatcher(o.metadata, `${path}.metadata`);
  return configError(path, `unsupported permission rule (${Object.keys(o).join(', ') || 'empty'})`);
}

/** Compile an envoy.config.rbac.v3.Principal. */
export function compilePrincipal(v: unknown, path: string): RbacMatch {
  const o = optObj(v, path) ?? configError(path, 'a Principal is required');
  if (o.and_ids !== undefined) return every(list(o.and_ids, 'ids', `${path}.and_ids`, compilePrincipal));
  if (o.or_ids !== undefined) return some(list(o.or_ids, 'ids', `${path}.or_ids`, compilePrincipal));
  if (o.any !== undefined) {
    if (optBool(o.any, `${path}.any`) !== true) configError(`${path}.any`, 'must be true');
    return always;
  }
  if (o.not_id !== undefined) {
    const inner = compilePrincipal(o.not_id, `${path}.not_id`);
    return (i) => !inner(i);
  }
  if (o.authenticated !== undefined) {
    const a = optObj(o.authenticated, `${path}.authenticated`) ?? {};
    // Without principal_name any verified client certificate matches (Envoy).
    const sm: StringMatch | undefined = a.principal_name !== undefined ? compileStringMatcher(a.principal_name, `${path}.authenticated.principal_name`) : undefined;
    return (i) => i.peerPrincipal !== undefined && (sm === undefined || sm(i.peerPrincipal));
  }
  if (o.direct_remote_ip !== undefined) return cidrOn(o.direct_remote_ip, `${path}.direct_remote_ip`, (i) => i.directRemoteIp);
  if (o.source_ip !== undefined) return cidrOn(o.source_ip, `${path}.source_ip`, (i) => i.directRemoteIp);
  if (o.remote_ip !== undefined) return cidrOn(o.remote_ip, `${path}.remote_ip`, (i) => i.remoteIp);
  if (o.header !== undefined) return header(o.header, `${path}.header`);
  if (o.url_path !== undefined) return urlPath(o.url_path, `${path}.url_path`);
  if (o.metadata !== undefined) return compileMetadataMatcher(o.metadata, `${path}.metadata`);
  return configError(path, `unsupported principal (${Object.keys(o).join(', ') || 'empty'})`);
}
