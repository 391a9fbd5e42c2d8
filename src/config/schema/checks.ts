/**
 * Where the value checks of values.ts apply, per schema: a table of spec-relative schema paths
 * (`http[].timeout`, `match[].headers{}`: `[]` = list items, `{}` = map values) and check names.
 * `annotate` writes `x-trellis-check` onto the schema nodes once at start-up; a test asserts
 * that every path in the table exists, so upstream schema changes cannot silently drop a check.
 */
import type { SchemaNode } from './types.ts';
import type { CheckFn } from './validate.ts';
import type { ValueProblem } from './values.ts';
import {
  checkDuration, checkEndpointAddress, checkHostname, checkIp, checkIpOrCidr, checkIstioHost,
  checkNamespacedHost, checkPercent, checkPort, checkPortOrName, checkPortString, checkRegex,
} from './values.ts';

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Istio StringMatch ({exact|prefix|regex}): the regex must compile under RE2. */
function checkStringMatch(v: unknown): ValueProblem | undefined {
  if (!isObj(v) || v.regex === undefined) return undefined;
  const p = checkRegex(v.regex);
  return p ? { ...p, subPath: 'regex' } : undefined;
}

/** Gateway API path/header/query match: `value` is a regex when `type` is RegularExpression. */
function checkGatewayMatch(v: unknown): ValueProblem | undefined {
  if (!isObj(v) || v.type !== 'RegularExpression' || v.value === undefined) return undefined;
  const p = checkRegex(v.value);
  return p ? { ...p, subPath: 'value' } : undefined;
}

/** GRPCRoute method match: `service` and `method` are regexes when `type` is RegularExpression. */
function checkGrpcMethodMatch(v: unknown): ValueProblem[] | undefined {
  if (!isObj(v) || v.type !== 'RegularExpression') return undefined;
  const out: ValueProblem[] = [];
  for (const k of ['service', 'method']) {
    if (v[k] === undefined) continue;
    const p = checkRegex(v[k]);
    if (p) out.push({ ...p, subPath: k });
  }
  return out;
}

/** Istio `rewrite.uriRegexRewrite.match`. */
function checkRegexRewrite(v: unknown): ValueProblem | undefined {
  if (!isObj(v) || v.match === undefined) return undefined;
  const p = checkRegex(v.match);
  return p ? { ...p, subPath: 'match' } : undefined;
}

/** Gateway API address: IPAddress type means the value must be an IP. */
function checkGatewayAddress(v: unknown): ValueProblem | undefined {
  if (!isObj(v) || (v.type !== undefined && v.type !== 'IPAddress')) return undefined;
  const p = checkIp(v.value);
  return p ? { ...p, subPath: 'value' } : undefined;
}

/** Map keys must be ports (PeerAuthentication portLevelMtls). */
function checkPortKeys(v: unknown): ValueProblem[] | undefined {
  if (!isObj(v)) return undefined;
  const out: ValueProblem[] = [];
  for (const k of Object.keys(v)) {
    const p = /^\d+$/.test(k) ? checkPort(Number(k)) : { code: 'BAD_PORT', message: `key "${k}" is not a port number` };
    if (p) out.push(p);
  }
  return out;
}

/** Every check by name, for `x-trellis-check`. */
export const CHECKS: Readonly<Record<string, CheckFn>> = {
  duration: checkDuration,
  regex: checkRegex,
  cidr: checkIpOrCidr,
  ip: checkIp,
  port: checkPort,
  portOrName: checkPortOrName,
  portString: checkPortString,
  portKeys: checkPortKeys,
  hostname: checkHostname,
  istioHost: checkIstioHost,
  namespacedHost: checkNamespacedHost,
  endpointAddress: checkEndpointAddress,
  percent: checkPercent,
  stringMatch: checkStringMatch,
  gatewayMatch: checkGatewayMatch,
  grpcMethodMatch: checkGrpcMethodMatch,
  regexRewrite: checkRegexRewrite,
  gatewayAddress: checkGatewayAddress,
};

type Table = ReadonlyArray<readonly [string, string]>;

function prefixed(prefixes: string[], rows: Table): Table {
  return prefixes.flatMap((p) => rows.map(([path, check]) => [p + path, check] as const));
}

const TRAFFIC_POLICY: Table = [
  ['connectionPool.tcp.connectTimeout', 'duration'],
  ['connectionPool.tcp.maxConnectionDuration', 'duration'],
  ['connectionPool.tcp.tcpKeepalive.time', 'duration'],
  ['connectionPool.tcp.tcpKeepalive.interval', 'duration'],
  ['connectionPool.http.idleTimeout', 'duration'],
  ['loadBalancer.consistentHash.httpCookie.ttl', 'duration'],
  ['loadBalancer.warmupDurationSecs', 'duration'],
  ['outlierDetection.interval', 'duration'],
  ['outlierDetection.baseEjectionTime', 'duration'],
  ['outlierDetection.maxEjectionPercent', 'percent'],
  ['outlierDetection.minHealthPercent', 'percent'],
  ['tunnel.targetPort', 'port'],
];

const STRING_MATCH_FIELDS = ['uri', 'scheme', 'method', 'authority'];

/** Check tables by upstream schema id (paths relative to `spec`). */
export const CHECK_TABLES: Readonly<Record<string, Table>> = {
  'networking.istio.io.v1beta1.VirtualService': [
    ['hosts[]', 'istioHost'],
    ['http[].timeout', 'duration'],
    ['http[].retries.perTryTimeout', 'duration'],
    ['http[].fault.delay.fixedDelay', 'duration'],
    ['http[].fault.delay.exponentialDelay', 'duration'],
    ['http[].fault.delay.percentage.value', 'percent'],
    ['http[].fault.abort.percentage.value', 'percent'],
    ['http[].mirrorPercentage.value', 'percent'],
    ['http[].corsPolicy.maxAge', 'duration'],
    ['http[].corsPolicy.allowOrigins[]', 'stringMatch'],
    ...STRING_MATCH_FIELDS.map((f) => [`http[].match[].${f}`, 'stringMatch'] as const),
    ['http[].match[].headers{}', 'stringMatch'],
    ['http[].match[].queryParams{}', 'stringMatch'],
    ['http[].match[].withoutHeaders{}', 'stringMatch'],
    ['http[].match[].port', 'port'],
    ['http[].route[].destination.host', 'istioHost'],
    ['http[].route[].destination.port.number', 'port'],
    ['http[].mirror.host', 'istioHost'],
    ['http[].mirror.port.number', 'port'],
    ['http[].mirrors[].destination.port.number', 'port'],
    ['http[].mirrors[].percentage.value', 'percent'],
    ['http[].redirect.port', 'port'],
    ['http[].rewrite.uriRegexRewrite', 'regexRewrite'],
    ['tcp[].match[].port', 'port'],
    ['tcp[].match[].destinationSubnets[]', 'cidr'],
    ['tcp[].match[].sourceSubnet', 'cidr'],
    ['tcp[].route[].destination.host', 'istioHost'],
    ['tcp[].route[].destination.port.number', 'port'],
    ['tls[].match[].port', 'port'],
    ['tls[].match[].destinationSubnets[]', 'cidr'],
    ['tls[].match[].sniHosts[]', 'istioHost'],
    ['tls[].route[].destination.host', 'istioHost'],
    ['tls[].route[].destination.port.number', 'port'],
  ],
  'networking.istio.io.v1beta1.DestinationRule': [
    ['host', 'istioHost'],
    ...prefixed(['trafficPolicy.', 'subsets[].trafficPolicy.'], TRAFFIC_POLICY),
    ...prefixed(['trafficPolicy.portLevelSettings[].', 'subsets[].trafficPolicy.portLevelSettings[].'],
      [...TRAFFIC_POLICY.filter(([p]) => !p.startsWith('tunnel')), ['port.number', 'port']]),
  ],
  'networking.istio.io.v1beta1.Gateway': [
    ['servers[].port.number', 'port'],
    ['servers[].port.targetPort', 'port'],
    ['servers[].hosts[]', 'namespacedHost'],
  ],
  'networking.istio.io.v1beta1.ServiceEntry': [
    ['hosts[]', 'istioHost'],
    ['addresses[]', 'cidr'],
    ['ports[].number', 'port'],
    ['ports[].targetPort', 'port'],
    ['endpoints[].address', 'endpointAddress'],
    ['endpoints[].ports{}', 'port'],
  ],
  'networking.istio.io.v1beta1.WorkloadEntry': [
    ['address', 'endpointAddress'],
    ['ports{}', 'port'],
  ],
  'networking.istio.io.v1beta1.Sidecar': [
    ['ingress[].port.number', 'port'],
    ['ingress[].port.targetPort', 'port'],
    ['egress[].port.number', 'port'],
    ['egress[].hosts[]', 'namespacedHost'],
    ['outboundTrafficPolicy.egressProxy.port.number', 'port'],
  ],
  'security.istio.io.v1beta1.PeerAuthentication': [
    ['portLevelMtls', 'portKeys'],
  ],
  'security.istio.io.v1.AuthorizationPolicy': [
    ...['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'].map((f) => [`rules[].from[].source.${f}[]`, 'cidr'] as const),
    ['rules[].to[].operation.ports[]', 'portString'],
    ['rules[].to[].operation.notPorts[]', 'portString'],
  ],
  'security.istio.io.v1.RequestAuthentication': [
    ['jwtRules[].timeout', 'duration'],
  ],
  'gateway.networking.k8s.io.v1.HTTPRoute': [
    ['rules[].matches[].path', 'gatewayMatch'],
    ['rules[].matches[].headers[]', 'gatewayMatch'],
    ['rules[].matches[].queryParams[]', 'gatewayMatch'],
  ],
  'gateway.networking.k8s.io.v1alpha2.GRPCRoute': [
    ['rules[].matches[].method', 'grpcMethodMatch'],
    ['rules[].matches[].headers[]', 'gatewayMatch'],
  ],
};

/** Finds the schema node at a `[]`/`{}` path below `root`; undefined if absent. */
export function schemaAt(root: SchemaNode, path: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = root;
  for (const tok of path.match(/[^.[\]{}]+|\[\]|\{\}/g) ?? []) {
    if (!node) return undefined;
    if (tok === '[]') node = node.items;
    else if (tok === '{}') node = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
    else node = node.properties?.[tok];
  }
  return node;
}

/** Writes `x-trellis-check` annotations for `table` into `spec`; returns the paths it could not find. */
export function annotate(spec: SchemaNode, table: Table): string[] {
  const missing: string[] = [];
  for (const [path, check] of table) {
    const node = schemaAt(spec, path);
    if (node) node['x-trellis-check'] = check;
    else missing.push(path);
  }
  return missing;
}
