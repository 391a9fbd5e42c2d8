/**
 * What to curl: the URLs the ingress gateway really serves, read off the listeners and route
 * configurations the control plane sent it (its /debug/config_dump), so `trellis up` suggests
 * `/productpage` for Bookinfo and `/` for the demo, with the Host header a virtual host needs.
 * One entry per route, in route order; regex-only matches are listed by their pattern.
 */
import { httpJson } from './wait.ts';

/** One route the gateway serves, as a ready-to-run curl command. */
export interface GatewayRoute {
  /** `curl ...` command line. */
  readonly curl: string;
  /** The route's match as istioctl shows it (`/productpage`, `/static*`, `regex ^/api`). */
  readonly match: string;
}

type J = Record<string, unknown>;
const obj = (v: unknown): J => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});
const arr = (v: unknown): J[] => (Array.isArray(v) ? (v as J[]) : []);

function pathOf(m: J): { path: string | undefined; match: string } {
  if (typeof m.path === 'string') return { path: m.path, match: m.path };
  if (typeof m.prefix === 'string') return { path: m.prefix === '' ? '/' : m.prefix, match: `${m.prefix}*` };
  if (typeof m.path_separated_prefix === 'string') return { path: m.path_separated_prefix, match: `${m.path_separated_prefix}/*` };
  const re = obj(m.safe_regex).regex;
  return { path: undefined, match: `regex ${String(re ?? '?')}` };
}

/** Header matches a curl can satisfy (exact values), as -H arguments. */
function headerArgs(m: J): string[] {
  const out: string[] = [];
  for (const h of arr(m.headers)) {
    const exact = obj(h.string_match).exact ?? h.exact_match;
    if (typeof h.name === 'string' && typeof exact === 'string' && h.invert_match !== true) out.push(`-H '${h.name}: ${exact}'`);
  }
  return out;
}

const quote = (s: string) => (/^[\w/.:@%~+=,-]*$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Routes of a gateway's config dump (proto3 JSON of LDS and RDS). */
export function routesOfDump(dump: { types?: Record<string, { resources?: unknown[] }> }): GatewayRoute[] {
  const routeConfigs = new Map<string, J>();
  for (const rc of (dump.types?.RDS?.resources ?? []) as J[]) if (typeof rc.name === 'string') routeConfigs.set(rc.name, rc);
  const out: GatewayRoute[] = [];
  for (const l of (dump.types?.LDS?.resources ?? []) as J[]) {
    const sa = obj(obj(l.address).socket_address);
    const port = Number(sa.port_value);
    if (!Number.isInteger(port) || port <= 0) continue;
    for (const chain of arr(l.filter_chains)) {
      const tls = chain.transport_socket !== undefined;
      for (const f of arr(chain.filters)) {
        const tc = obj(f.typed_config);
        const rc = tc.route_config !== undefined ? obj(tc.route_config) : routeConfigs.get(String(obj(tc.rds).route_config_name));
        for (const vh of arr(rc?.virtual_hosts)) {
          const domains = (Array.isArray(vh.domains) ? vh.domains : []) as string[];
          const named = domains.find((d) => d !== '*' && !d.includes('*'));
          const host = domains.includes('*') || named === undefined ? undefined : named.replace(/:\d+$/, '');
          for (const r of arr(vh.routes)) {
            const m = obj(r.match);
            const { path, match } = pathOf(m);
            if (path === undefined) {
              out.push({ curl: '', match });
              continue;
            }
            const base = tls ? `https://${host ?? '127.0.0.1'}:${port}` : `http://127.0.0.1:${port}`;
            const args = ['curl', ...(tls ? ['-k', ...(host !== undefined ? [`--resolve ${host}:${port}:127.0.0.1`] : [])] : host !== undefined ? [`-H 'Host: ${host}'`] : []), ...headerArgs(m), quote(base + path)];
            out.push({ curl: args.join(' '), match });
          }
        }
      }
    }
  }
  // One line per distinct command (several listeners or virtual hosts may repeat a route).
  const seen = new Set<string>();
  return out.filter((r) => (r.curl === '' ? true : !seen.has(r.curl) && (seen.add(r.curl), true)));
}

/** The gateway's routes, from the control plane at 127.0.0.1:`debugPort`. */
export async function gatewayRoutes(debugPort: number, nodeId: string): Promise<GatewayRoute[]> {
  const dump = await httpJson(debugPort, `/debug/config_dump?proxyID=${encodeURIComponent(nodeId)}`, 2000);
  return dump === undefined ? [] : routesOfDump(dump as Parameters<typeof routesOfDump>[0]);
}
