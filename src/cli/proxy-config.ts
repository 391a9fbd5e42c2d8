/**
 * `trellis proxy-config {listeners|routes|clusters|endpoints|all} PROXY`: what the control plane
 * sent one proxy (from `/debug/config_dump?proxyID=`), as tables with the key columns
 * `istioctl proxy-config` shows, or as JSON with `-o json`. PROXY is a replica name, `pod.namespace`,
 * a node id, or a unique prefix of one (proxy-name.ts). Istio-style names (`outbound|80|v1|reviews.default.svc.cluster.local`) are split
 * into their parts; anything else is shown as is.
 */
import type { ConfigDump } from '../control/xds/server.ts';
import { TrellisError } from '../errors.ts';
import { UsageError } from './args.ts';
import type { Verb } from './main.ts';
import { proxyConfig as spec } from './commands-inspect.ts';
import { parseCommand } from './spec.ts';
import { controlUrl, fetchControl, renderTable } from './proxy-status.ts';
import { resolveProxyName } from './proxy-name.ts';

type J = Record<string, unknown>;
const KINDS = { clusters: 'CDS', listeners: 'LDS', routes: 'RDS', endpoints: 'EDS' } as const;
type Kind = keyof typeof KINDS;

const obj = (v: unknown): J => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});
const arr = (v: unknown): J[] => (Array.isArray(v) ? (v as J[]) : []);
const str = (v: unknown, dflt = '-'): string => (v === undefined || v === null || v === '' ? dflt : String(v));

/** The config a route or cluster came from, as istioctl shows it: `reviews.default` from Istio's metadata path. */
export function istioConfig(r: J): string {
  const path = str(obj(obj(obj(r.metadata).filter_metadata).istio).config);
  const m = /^\/apis\/[^/]+\/[^/]+\/namespaces\/([^/]+)\/[^/]+\/([^/]+)$/.exec(path);
  return m !== null ? `${m[2]}.${m[1]}` : path;
}

function clusterRows(resources: J[]): string[][] {
  return resources.map((c) => {
    const name = str(c.name);
    const parts = name.split('|');
    const [direction, port, subset, fqdn] = parts.length === 4 ? parts : ['-', '-', '-', name];
    const type = c.type !== undefined ? str(c.type) : c.cluster_type !== undefined ? str(obj(c.cluster_type).name) : 'EDS';
    return [fqdn, port, subset === '' ? '-' : subset, direction, type, istioConfig(c)];
  });
}

function matchOf(m: J): string {
  const parts: string[] = [];
  if (m.destination_port !== undefined) parts.push(`port ${str(m.destination_port)}`);
  if (m.transport_protocol !== undefined) parts.push(`Trans: ${str(m.transport_protocol)}`);
  const alpn = arr(m.application_protocols) as unknown as string[];
  if (alpn.length > 0) parts.push(`App: ${alpn.join(',')}`);
  const sni = arr(m.server_names) as unknown as string[];
  if (sni.length > 0) parts.push(`SNI: ${sni.join(',')}`);
  const ranges = arr(m.prefix_ranges).map((r) => `${str(r.address_prefix)}/${str(r.prefix_len, '32')}`);
  if (ranges.length > 0) parts.push(`Addr: ${ranges.join(',')}`);
  return parts.length === 0 ? 'ALL' : parts.join('; ');
}

function destinationOf(filters: J[]): string {
  for (const f of filters) {
    const tc = obj(f.typed_config);
    if (tc.rds !== undefined) return `Route: ${str(obj(tc.rds).route_config_name)}`;
    if (tc.route_config !== undefined) return 'Inline Route';
    if (typeof tc.cluster === 'string') return `Cluster: ${tc.cluster}`;
    if (tc.weighted_clusters !== undefined) return 'Weighted Clusters';
  }
  return filters.length === 0 ? '-' : `Non-HTTP/Non-TCP (${str(filters[filters.length - 1].name)})`;
}

function listenerRows(resources: J[]): string[][] {
  const rows: string[][] = [];
  for (const l of resources) {
    const sa = obj(obj(l.address).socket_address);
    const addr = str(sa.address);
    const port = str(sa.port_value);
    if (l.api_listener !== undefined) {
      const hcm = obj(obj(l.api_listener).api_listener);
      rows.push([str(l.name), '-', '-', 'API listener (gRPC)', destinationOf([{ typed_config: hcm }])]);
      continue;
    }
    const chains = arr(l.filter_chains);
    if (l.default_filter_chain !== undefined) chains.push({ ...obj(l.default_filter_chain), filter_chain_match: { __default: true } });
    if (chains.length === 0) rows.push([str(l.name), addr, port, 'ALL', '-']);
    for (const ch of chains) {
      const m = obj(ch.filter_chain_match);
      rows.push([str(l.name), addr, port, m.__default === true ? 'default' : matchOf(m), destinationOf(arr(ch.filters))]);
    }
  }
  return rows;
}

function routeMatch(m: J): string {
  if (m.prefix !== undefined) return `${str(m.prefix)}*`;
  if (m.path !== undefined) return str(m.path);
  if (m.safe_regex !== undefined) return `regex ${str(obj(m.safe_regex).regex)}`;
  if (m.path_separated_prefix !== undefined) return `${str(m.path_separated_prefix)}/*`;
  if (m.connect_matcher !== undefined) return 'CONNECT';
  return '-';
}

function routeRows(resources: J[]): string[][] {
  const rows: string[][] = [];
  for (const rc of resources) {
    for (const vh of arr(rc.virtual_hosts)) {
      const domains = arr(vh.domains) as unknown as string[];
      const d = domains.length === 0 ? '-' : domains.length === 1 ? domains[0] : `${domains[0]} + ${domains.length - 1} more...`;
      const routes = arr(vh.routes);
      if (routes.length === 0) rows.push([str(rc.name), str(vh.name), d, '-', '-']);
      for (const r of routes) rows.push([str(rc.name), str(vh.name), d, routeMatch(obj(r.match)), istioConfig(r)]);
    }
  }
  return rows;
}

function endpointRows(resources: J[]): string[][] {
  const rows: string[][] = [];
  for (const cla of resources) {
    for (const group of arr(cla.endpoints)) {
      const loc = obj(group.locality);
      const locality = [loc.region, loc.zone, loc.sub_zone].filter((x) => typeof x === 'string' && x !== '').join('/') || '-';
      for (const e of arr(group.lb_endpoints)) {
        const sa = obj(obj(obj(e.endpoint).address).socket_address);
        const pipe = obj(obj(obj(e.endpoint).address).pipe);
        const ep = sa.address !== undefined ? `${str(sa.address)}:${str(sa.port_value)}` : `unix://${str(pipe.path)}`;
        rows.push([ep, str(e.health_status, 'HEALTHY'), locality, str(e.load_balancing_weight, '1'), str(cla.cluster_name)]);
      }
    }
  }
  return rows;
}

const HEADERS: Record<Kind, string[]> = {
  clusters: ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE'],
  listeners: ['NAME', 'ADDRESS', 'PORT', 'MATCH', 'DESTINATION'],
  routes: ['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'],
  endpoints: ['ENDPOINT', 'STATUS', 'LOCALITY', 'WEIGHT', 'CLUSTER'],
};
const ROWS: Record<Kind, (r: J[]) => string[][]> = { clusters: clusterRows, listeners: listenerRows, routes: routeRows, endpoints: endpointRows };

/** Table text for one kind of a config dump. */
export function renderProxyConfig(dump: ConfigDump, kind: Kind | 'all'): string {
  const kinds: Kind[] = kind === 'all' ? ['clusters', 'listeners', 'routes', 'endpoints'] : [kind];
  return kinds
    .map((k) => {
      const resources = (dump.types[KINDS[k]]?.resources ?? []) as J[];
      const table = renderTable(HEADERS[k], ROWS[k](resources));
      return kind === 'all' ? `${k.toUpperCase()}:\n${table}` : table;
    })
    .join('\n');
}

export const verb: Verb = {
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseCommand(spec, args);
    const [kind, proxy, ...extra] = positionals;
    if (kind === undefined || !(kind in KINDS || kind === 'all')) {
      throw new UsageError(`proxy-config: first argument must be listeners, routes, clusters, endpoints or all${kind ? `, got '${kind}'` : ''}`);
    }
    if (proxy === undefined) throw new UsageError('proxy-config: missing PROXY (a replica name from `trellis status`, a node id from `trellis proxy-status`, or a unique prefix)');
    if (extra.length > 0) throw new UsageError(`proxy-config: unexpected argument '${extra[0]}'`);
    if (values.output !== 'table' && values.output !== 'json') throw new UsageError(`proxy-config: -o must be table or json, got '${values.output}'`);
    const base = controlUrl(values.control, values['state-dir']);
    const syncz = await fetchControl(base, '/debug/syncz');
    if (syncz.status !== 200 || !Array.isArray(syncz.body)) throw new TrellisError('CONTROL_HTTP', `${base}/debug/syncz answered ${syncz.status}`);
    const id = resolveProxyName(proxy, (syncz.body as J[]).map((p) => str(p.id, '')).filter((x) => x !== ''));
    const { status, body } = await fetchControl(base, `/debug/config_dump?proxyID=${encodeURIComponent(id)}`);
    if (status === 404) throw new TrellisError('PROXY_NOT_FOUND', `proxy '${id}' disconnected just now`);
    if (status !== 200) throw new TrellisError('CONTROL_HTTP', `${base}/debug/config_dump answered ${status}: ${JSON.stringify(body).slice(0, 200)}`);
    const dump = body as ConfigDump;
    if (values.output === 'json') {
      const out = kind === 'all' ? dump : (dump.types[KINDS[kind as Kind]]?.resources ?? []);
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } else {
      process.stdout.write(renderProxyConfig(dump, kind as Kind | 'all'));
    }
    return 0;
  },
};
