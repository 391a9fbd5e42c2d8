/**
 * A request simulator over generated xDS (Istio's simulation tests, for us): given a resource
 * set and a request, which listener, filter chain, route configuration, virtual host, route,
 * clusters (all weighted candidates) and endpoints Envoy would pick. Envoy semantics it follows:
 * filter chain match by destination port, destination IP (longest prefix), server name (exact,
 * then longest wildcard), transport protocol and application protocols, most specific first, then the default chain;
 * virtual host domains exact > longest suffix wildcard (`*.a.b`) > longest prefix wildcard
 * (`a.*`) > `*`, matched against the Host header as sent (port included); the first route whose
 * path (prefix / path / safe_regex full match / path_separated_prefix), headers and query
 * parameters match. For tests only: clarity over speed.
 */
import { TypeUrl } from '../../xds/types.ts';
import type { XdsJson, XdsResourceSet } from '../../xds/types.ts';
import { edsServiceName, isEdsCluster, rdsNameOf, TcpProxyType } from '../../xds/references.ts';

type Json = Record<string, unknown>;

export interface SimulatedRequest {
  /** Listener by name (`127.0.0.1_9080`, `0.0.0.0_80`, a proxyless `host:port`)... */
  readonly listener?: string;
  /** ...or by the port it binds (its address port, or for bind_to_port=false listeners the name's port). */
  readonly port?: number;
  /** Host/authority header as sent (may include `:port`). */
  readonly host?: string;
  readonly path?: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** TLS SNI; its presence means the connection is TLS. */
  readonly sni?: string;
  /** What the HTTP inspector would report on a plaintext connection (`http/1.1`, `h2c`); unset = not HTTP. */
  readonly applicationProtocol?: string;
  /** Original destination IP (transparent capture). */
  readonly destinationIp?: string;
}

export interface SimulationResult {
  readonly listener?: string;
  /** Filter chain name or index (`#0`), `default` for default_filter_chain. */
  readonly filterChain?: string;
  readonly routeConfig?: string;
  readonly virtualHost?: string;
  /** Route name or `#<index>`. */
  readonly route?: string;
  /** Clusters with weights (one entry with weight 100 for a single cluster). */
  readonly clusters: readonly { readonly name: string; readonly weight: number }[];
  /** Endpoints (`addr:port`) per chosen cluster. */
  readonly endpoints: Readonly<Record<string, readonly string[]>>;
  readonly directResponse?: number;
  readonly redirect?: Json;
  /** Why nothing was chosen, when so. */
  readonly error?: string;
}

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}
function arr(v: unknown): Json[] {
  return Array.isArray(v) ? (v as Json[]) : [];
}

function listenerPort(l: Json): number | undefined {
  return obj(obj(l.address)?.socket_address)?.port_value as number | undefined;
}

function ipInPrefix(ip: string, prefix: string, len: number): boolean {
  if (ip.includes(':') || prefix.includes(':')) return ip === prefix;
  const toInt = (s: string) => s.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  if (len === 0) return true;
  const mask = len >= 32 ? 0xffffffff : (~((1 << (32 - len)) - 1)) >>> 0;
  return ((toInt(ip) & mask) >>> 0) === ((toInt(prefix) & mask) >>> 0);
}

function serverNameScore(names: string[] | undefined, sni: string | undefined): number | undefined {
  if (names === undefined || names.length === 0) return 0;
  if (sni === undefined) return undefined;
  if (names.includes(sni)) return 10000;
  let best: number | undefined;
  for (const n of names) if (n.startsWith('*.') && sni.endsWith(n.slice(1))) best = Math.max(best ?? 0, n.length);
  return best;
}

function compareScores(a: readonly number[], b: readonly number[]): number {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return a[k] - b[k];
  return 0;
}

/** Picks a filter chain as Envoy does (most specific criteria first). */
function pickChain(l: Json, req: SimulatedRequest, port: number | undefined): { chain: Json; label: string } | undefined {
  let best: { chain: Json; label: string; score: number[] } | undefined;
  const transport = req.sni !== undefined ? 'tls' : 'raw_buffer';
  arr(l.filter_chains).forEach((fc, i) => {
    const m = obj(fc.filter_chain_match) ?? {};
    const dp = m.destination_port as number | undefined;
    if (dp !== undefined && dp !== port) return;
    let prefixLen = -1;
    const ranges = arr(m.prefix_ranges);
    if (ranges.length > 0) {
      if (req.destinationIp === undefined) return;
      for (const r of ranges) {
        const len = (r.prefix_len as number | undefined) ?? 0;
        if (ipInPrefix(req.destinationIp, String(r.address_prefix), len)) prefixLen = Math.max(prefixLen, len);
      }
      if (prefixLen < 0) return;
    }
    const sn = serverNameScore(m.server_names as string[] | undefined, req.sni);
    if (sn === undefined) return;
    const tp = m.transport_protocol as string | undefined;
    if (tp !== undefined && tp !== transport) return;
    const ap = m.application_protocols as string[] | undefined;
    if (ap !== undefined && ap.length > 0 && (req.applicationProtocol === undefined || !ap.includes(req.applicationProtocol))) return;
    const score = [dp !== undefined ? 1 : 0, prefixLen + 1, sn, tp !== undefined ? 1 : 0, ap !== undefined && ap.length > 0 ? 1 : 0];
    if (best === undefined || compareScores(score, best.score) > 0) best = { chain: fc, label: typeof fc.name === 'string' ? fc.name : `#${i}`, score };
  });
  if (best !== undefined) return best;
  const d = obj(l.default_filter_chain);
  return d !== undefined ? { chain: d, label: 'default' } : undefined;
}

/** Envoy's virtual host selection. */
export function pickVirtualHost(rc: Json, host: string): Json | undefined {
  let h = host.toLowerCase();
  // ignore_port_in_host_matching: any `:port` after the host (not inside an IPv6 literal) is dropped.
  if (rc.ignore_port_in_host_matching === true) h = h.replace(/:\d+$/, '');
  const vhs = arr(rc.virtual_hosts);
  let suffix: { vh: Json; len: number } | undefined;
  let prefix: { vh: Json; len: number } | undefined;
  let star: Json | undefined;
  for (const vh of vhs) {
    for (const d0 of (vh.domains as string[] | undefined) ?? []) {
      const d = d0.toLowerCase();
      if (d === h) return vh;
      if (d === '*') star ??= vh;
      else if (d.startsWith('*') && h.endsWith(d.slice(1)) && h.length > d.length - 1) {
        if (suffix === undefined || d.length > suffix.len) suffix = { vh, len: d.length };
      } else if (d.endsWith('*') && h.startsWith(d.slice(0, -1)) && h.length > d.length - 1) {
        if (prefix === undefined || d.length > prefix.len) prefix = { vh, len: d.length };
      }
    }
  }
  return suffix?.vh ?? prefix?.vh ?? star;
}

function stringMatch(m: Json, value: string | undefined): boolean {
  if (value === undefined) return false;
  const ic = m.ignore_case === true;
  const v = ic ? value.toLowerCase() : value;
  const c = (s: unknown) => (ic ? String(s).toLowerCase() : String(s));
  if (m.exact !== undefined) return v === c(m.exact);
  if (m.prefix !== undefined) return v.startsWith(c(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(c(m.suffix));
  if (m.contains !== undefined) return v.includes(c(m.contains));
  const re = obj(m.safe_regex)?.regex;
  if (typeof re === 'string') return new RegExp(`^(?:${re})$`).test(value);
  return true;
}

function headerMatches(hm: Json, headers: Readonly<Record<string, string>>): boolean {
  const name = String(hm.name).toLowerCase();
  const value = name === ':method' ? headers[':method'] : name === ':authority' ? headers[':authority'] : headers[name];
  let ok: boolean;
  if (hm.present_match !== undefined) ok = (value !== undefined) === (hm.present_match === true);
  else if (obj(hm.string_match) !== undefined) ok = stringMatch(obj(hm.string_match)!, value);
  else if (hm.exact_match !== undefined) ok = value === hm.exact_match;
  else if (hm.prefix_match !== undefined) ok = value !== undefined && value.startsWith(String(hm.prefix_match));
  else if (obj(hm.safe_regex_match) !== undefined) ok = stringMatch({ safe_regex: hm.safe_regex_match }, value);
  else ok = value !== undefined;
  return hm.invert_match === true ? !ok : ok;
}

/** True when an Envoy RouteMatch matches the request. */
export function routeMatches(m: Json, path: string, headers: Readonly<Record<string, string>>): boolean {
  const q = path.indexOf('?');
  const p = q === -1 ? path : path.slice(0, q);
  const cs = m.case_sensitive !== false;
  const norm = (s: string) => (cs ? s : s.toLowerCase());
  // Envoy: connect_matcher routes match CONNECT requests only, and CONNECT matches nothing else.
  if ((m.connect_matcher !== undefined) !== (headers[':method'] === 'CONNECT')) return false;
  if (m.prefix !== undefined && !norm(p).startsWith(norm(String(m.prefix)))) return false;
  if (m.path !== undefined && norm(p) !== norm(String(m.path))) return false;
  const re = obj(m.safe_regex)?.regex;
  if (typeof re === 'string' && !new RegExp(`^(?:${re})$`).test(p)) return false;
  if (m.path_separated_prefix !== undefined) {
    const pre = String(m.path_separated_prefix);
    if (!(norm(p) === norm(pre) || norm(p).startsWith(norm(pre) + '/'))) return false;
  }
  for (const hm of arr(m.headers)) if (!headerMatches(hm, headers)) return false;
  if (arr(m.query_parameters).length > 0) {
    const params = new URLSearchParams(q === -1 ? '' : path.slice(q + 1));
    for (const qp of arr(m.query_parameters)) {
      const v = params.get(String(qp.name)) ?? undefined;
      if (qp.present_match === true) { if (v === undefined) return false; }
      else if (obj(qp.string_match) !== undefined) { if (!stringMatch(obj(qp.string_match)!, v)) return false; }
      else if (v === undefined) return false;
    }
  }
  if (obj(m.grpc) !== undefined && !(headers['content-type'] ?? '').startsWith('application/grpc')) return false;
  return true;
}

function endpointsOf(set: XdsResourceSet, cluster: string): string[] {
  const c = set.get(TypeUrl.Cluster)?.get(cluster);
  if (c === undefined) return [];
  const cla = isEdsCluster(c)
    ? set.get(TypeUrl.ClusterLoadAssignment)?.get(edsServiceName(c))
    : obj(c.load_assignment);
  const out: string[] = [];
  for (const le of arr(cla?.endpoints)) {
    for (const lb of arr(le.lb_endpoints)) {
      const sa = obj(obj(obj(lb.endpoint)?.address)?.socket_address);
      if (sa !== undefined) out.push(`${sa.address}:${sa.port_value}`);
    }
  }
  return out;
}

function clustersOfAction(a: Json): { name: string; weight: number }[] {
  if (typeof a.cluster === 'string') return [{ name: a.cluster, weight: 100 }];
  return arr(obj(a.weighted_clusters)?.clusters).map((c) => ({ name: String(c.name), weight: Number(c.weight ?? 0) }));
}

/** Simulates `req` against `set`. */
export function simulate(set: XdsResourceSet, req: SimulatedRequest): SimulationResult {
  const listeners = set.get(TypeUrl.Listener) ?? new Map<string, XdsJson>();
  let l: XdsJson | undefined;
  if (req.listener !== undefined) l = listeners.get(req.listener);
  else if (req.port !== undefined) {
    const all = [...listeners.values()];
    l = all.find((x) => listenerPort(x) === req.port && x.bind_to_port !== false && x.use_original_dst !== true)
      ?? all.find((x) => String(x.name).endsWith(`_${req.port}`));
  }
  const empty = { clusters: [], endpoints: {} };
  if (l === undefined) return { ...empty, error: 'no listener' };
  const name = String(l.name);
  let filters: Json[];
  let chainLabel: string | undefined;
  const api = obj(obj(l.api_listener)?.api_listener);
  if (api !== undefined) filters = [{ name: 'envoy.filters.network.http_connection_manager', typed_config: api }];
  else {
    const picked = pickChain(l, req, req.port ?? listenerPort(l));
    if (picked === undefined) return { ...empty, listener: name, error: 'no filter chain' };
    filters = arr(picked.chain.filters);
    chainLabel = picked.label;
  }
  const base = { listener: name, ...(chainLabel !== undefined ? { filterChain: chainLabel } : {}) };
  const finish = (clusters: { name: string; weight: number }[], extra: Json): SimulationResult => ({
    ...base,
    ...extra,
    clusters,
    endpoints: Object.fromEntries(clusters.map((c) => [c.name, endpointsOf(set, c.name)])),
  });
  const last = filters[filters.length - 1];
  const tc = obj(last?.typed_config) ?? {};
  if (tc['@type'] === TcpProxyType) {
    const clusters = typeof tc.cluster === 'string' ? [{ name: tc.cluster, weight: 100 }] : clustersOfAction(tc);
    return finish(clusters, {});
  }
  const rdsName = rdsNameOf(tc);
  const rc = rdsName !== undefined ? set.get(TypeUrl.RouteConfiguration)?.get(rdsName) : obj(tc.route_config);
  if (rc === undefined) return { ...base, ...empty, error: `route configuration ${String(rdsName)} not found` };
  const rcName = String(rc.name ?? rdsName);
  const host = req.host ?? (api !== undefined ? name : '');
  const vh = pickVirtualHost(rc, host);
  if (vh === undefined) return { ...base, ...empty, routeConfig: rcName, error: 'no virtual host (404)' };
  const headers: Record<string, string> = { ':method': req.method ?? 'GET', ':authority': host };
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  const path = req.path ?? '/';
  const routes = arr(vh.routes);
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i];
    if (!routeMatches(obj(r.match) ?? {}, path, headers)) continue;
    const at = { routeConfig: rcName, virtualHost: String(vh.name), route: typeof r.name === 'string' && r.name !== '' ? r.name : `#${i}` };
    const dr = obj(r.direct_response);
    if (dr !== undefined) return finish([], { ...at, directResponse: dr.status });
    if (obj(r.redirect) !== undefined) return finish([], { ...at, redirect: obj(r.redirect) });
    return finish(clustersOfAction(obj(r.route) ?? {}), at);
  }
  return { ...base, ...empty, routeConfig: rcName, virtualHost: String(vh.name), error: 'no route (404)' };
}
