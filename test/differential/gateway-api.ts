/**
 * Route tables Trellis translates from Gateway API YAML (the shapes of the conformance manifests
 * httproute-redirect-port-and-scheme and httproute-response-header-modifier): a Gateway with HTTP
 * listeners on 80 and 8080, RequestRedirect rules with and without scheme, hostname and port, and
 * ResponseHeaderModifier set/add/remove in front of an HTTP/1.1 and an HTTP/2 backend (mapped onto
 * the rig's clusters). With the requests for each listener, and what the answers must show on top
 * of Envoy and trellis proxy agreeing: the Gateway API's redirect port in Location, and an added
 * response header value on a line of its own.
 */
import { buildGatewayApiRoute } from '../../src/control/translate/routes/index.ts';
import { inputsFromYaml } from '../../src/control/translate/routes/test-support.ts';
import type { Outcome } from './client.ts';
import type { GenRequest, Json } from './generate.ts';

const YAML = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: infra}
spec: {selector: {app: web}, ports: [{name: http, port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-h2, namespace: infra}
spec: {selector: {app: web-h2}, ports: [{name: http, port: 8080, appProtocol: kubernetes.io/h2c}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: trellis
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: http-8080, port: 8080, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: redirects, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
${REDIRECTS().map(([path, r]) => `  - matches: [{path: {type: PathPrefix, value: ${path}}}]
    filters: [{type: RequestRedirect, requestRedirect: ${JSON.stringify(r)}}]`).join('\n')}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: response-headers, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
${['web', 'web-h2'].map((svc) => `  - matches: [{path: {type: PathPrefix, value: /headers-${svc}}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: add-appends-values}, {name: X-Header-Add-2, value: header-add-2}]
        remove: [X-Header-Remove]
    backendRefs: [{name: ${svc}, port: 8080}]`).join('\n')}
`;

type Redirect = { scheme?: string; hostname?: string; port?: number };

/** The RequestRedirect variants: [path prefix, filter]. */
function REDIRECTS(): [string, Redirect][] {
  const out: [string, Redirect][] = [];
  for (const scheme of [undefined, 'http', 'https']) {
    for (const port of [undefined, 80, 443, 8080, 8443]) {
      for (const hostname of [undefined, 'example.org']) {
        out.push([`/r-${scheme ?? 'nil'}-${port ?? 'nil'}-${hostname ? 'host' : 'nohost'}`, { ...(scheme ? { scheme } : {}), ...(hostname ? { hostname } : {}), ...(port ? { port } : {}) }]);
      }
    }
  }
  return out;
}

const CLUSTER_OF: Record<string, string> = {
  'outbound|8080||web.infra.svc.cluster.local': 'echo-a',
  'outbound|8080||web-h2.infra.svc.cluster.local': 'echo-h2',
};

/** The translated table with cluster names mapped onto the rig's (every other field as translated). */
function mapClusters(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(mapClusters);
  if (v === null || typeof v !== 'object') return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v as Json)) out[k] = k === 'cluster' && typeof x === 'string' ? CLUSTER_OF[x] ?? x : mapClusters(x);
  return out;
}

/** One request and what its answer must show (undefined when it does). */
export interface TranslatedRequest {
  readonly req: GenRequest;
  readonly check: (o: Outcome) => string | undefined;
}

export interface TranslatedTable {
  readonly listenerPort: number;
  readonly config: Json;
  readonly requests: readonly TranslatedRequest[];
}

const WELL_KNOWN: Record<string, number> = { http: 80, https: 443 };

/** What Location must be, per the Gateway API, for `r` on a listener at `listenerPort` reached with Host `host`. */
function expectedLocation(r: Redirect, listenerPort: number, host: string): { scheme: string; host: string; ports: string[] } {
  const scheme = r.scheme ?? 'http';
  const port = r.port ?? (r.scheme ? WELL_KNOWN[scheme] : listenerPort);
  // The spec: no port for the scheme's own (SHOULD NOT); upstream's check accepts it either way.
  const ports = port === WELL_KNOWN[scheme] ? ['', String(port)] : [String(port)];
  return { scheme, host: r.hostname ?? host.replace(/:\d+$/, ''), ports };
}

function checkRedirect(r: Redirect, listenerPort: number, host: string, path: string): (o: Outcome) => string | undefined {
  return (o) => {
    const loc = o.headers.location?.[0];
    if (o.status !== 302 || loc === undefined) return `status ${o.status}, location ${loc}, want a 302 redirect`;
    const m = /^([a-z]+):\/\/([^/:]+)(?::(\d+))?(\/.*)$/.exec(loc);
    if (!m) return `unparsable Location ${loc}`;
    const want = expectedLocation(r, listenerPort, host);
    if (m[1] !== want.scheme || m[2] !== want.host || !want.ports.includes(m[3] ?? '') || m[4] !== path) {
      const port = want.ports.length === 2 ? `[:${want.ports[1]}]` : `:${want.ports[0]}`;
      return `Location ${loc}, want ${want.scheme}://${want.host}${port}${path}`;
    }
    return undefined;
  };
}

function checkHeaders(o: Outcome): string | undefined {
  const want: Record<string, string[]> = {
    'x-header-add': ['some-other-value', 'add-appends-values'],
    'x-header-add-2': ['header-add-2'],
    'x-header-set': ['set-overwrites-values'],
  };
  for (const [k, v] of Object.entries(want)) {
    if (JSON.stringify(o.headers[k]) !== JSON.stringify(v)) return `${k}: ${JSON.stringify(o.headers[k])}, want the lines ${JSON.stringify(v)}`;
  }
  return o.headers['x-header-remove'] === undefined ? undefined : 'x-header-remove still present';
}

/** The tables for the listeners on 80 and 8080, each with its requests. */
export function translatedTables(): TranslatedTable[] {
  const inputs = inputsFromYaml(YAML);
  const gw = inputs.gateways[0];
  return [80, 8080].map((port) => {
    const config = { ...(mapClusters(buildGatewayApiRoute(inputs, `http.${port}`, gw, port)) as Json), name: 'diff-routes' };
    const requests: TranslatedRequest[] = [];
    // What a client of the listener sends: its port in Host unless it is 80 (and sometimes anyway).
    const hosts = port === 80 ? ['gw.example', 'gw.example:80'] : [`gw.example:${port}`];
    for (const host of hosts) {
      for (const [path, r] of REDIRECTS()) {
        const p = `${path}/x`;
        requests.push({ req: { method: 'GET', authority: host, path: p, headers: [] }, check: checkRedirect(r, port, host, p) });
      }
    }
    for (const svc of ['web', 'web-h2']) {
      requests.push({
        req: { method: 'GET', authority: hosts[0], path: `/headers-${svc}`, headers: [['X-Echo-Set-Header', 'X-Header-Add:some-other-value,X-Header-Set:upstream,X-Header-Remove:gone']] },
        check: checkHeaders,
      });
    }
    return { listenerPort: port, config, requests };
  });
}
