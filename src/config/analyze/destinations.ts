/**
 * VirtualService destinations: every `destination.host` of an http/tcp/tls route (and mirror) must
 * name a service visible where the VirtualService applies — a Kubernetes Service (short names
 * resolved in the VirtualService's namespace) or a ServiceEntry host (wildcards included) exported
 * to the VirtualService's namespace, or to one of its own `exportTo` namespaces — VS_HOST_NOT_FOUND,
 * as istioctl's IST0101; a route entry without a destination host is reported the same way; every
 * `subset` must be defined by a DestinationRule for that host — SUBSET_NOT_FOUND; a `port.number`
 * must be one of the service's ports — DESTINATION_PORT_NOT_FOUND; a service with several ports
 * needs `port` unless every port the route serves is one of them — DESTINATION_PORT_REQUIRED
 * (IST0112); route weights — WEIGHTS_NOT_100.
 *
 * Weights: Istio before 1.15 rejected multi-destination routes whose weights did not sum to 100;
 * since istio/istio#39544 weights are relative (`weight / sum`). Trellis follows current Istio, so
 * a sum other than 100 is only a warning (usually a typo in a canary split), while a sum of 0 over
 * several destinations sends traffic nowhere and is an error. A single destination needs no weight.
 *
 * Ports: without `destination.port`, Trellis (as Istio) sends a request to the destination's port
 * that equals the port it arrived on (the service port for sidecars, the server port on a
 * gateway), or to the only port of a one-port service.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { hostMatches, kubernetesServiceAliases } from '../host.ts';
import type { AnalysisContext } from './context.ts';
import { notVisibleWhy, ruleViewers, type HostEntry } from './host-index.ts';
import { parseGatewayRef } from './gateway-refs.ts';
import { isObject, list, view, type Destination, type DestinationRuleView, type IstioGatewayView, type RouteDestination, type VirtualServiceView } from '../views.ts';

interface VsScope {
  readonly vs: Resource;
  readonly viewers: ReadonlySet<string>;
  /** Ports the VirtualService's routes serve (service ports of its hosts, server ports of its gateways); undefined when unknown. */
  readonly ports: ReadonlySet<number> | undefined;
}

/** Runs the destination checks over every VirtualService. */
export function checkDestinations(ctx: AnalysisContext): void {
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    const spec = view<VirtualServiceView>(vs);
    const scope: VsScope = { vs, viewers: ruleViewers(spec.exportTo, vs.metadata.namespace), ports: servedPorts(ctx, vs, spec) };
    list(spec.http).forEach((route, i) => {
      if (route === null || typeof route !== 'object') return;
      checkRouteList(ctx, scope, list(route.route), `spec.http[${i}]`);
      if (isObject(route.mirror)) checkDestination(ctx, scope, route.mirror, `spec.http[${i}].mirror`);
      list(route.mirrors).forEach((m, k) => {
        if (isObject(m?.destination)) checkDestination(ctx, scope, m.destination, `spec.http[${i}].mirrors[${k}].destination`);
      });
    });
    for (const section of ['tcp', 'tls'] as const) {
      list(spec[section]).forEach((route, i) => {
        if (route === null || typeof route !== 'object') return;
        checkRouteList(ctx, scope, list(route.route), `spec.${section}[${i}]`);
      });
    }
  }
}

/** The ports a VirtualService's routes are used on, or undefined when some are unknown. */
function servedPorts(ctx: AnalysisContext, vs: Resource, spec: VirtualServiceView): ReadonlySet<number> | undefined {
  const gateways = list(spec.gateways).filter((g): g is string => typeof g === 'string');
  const out = new Set<number>();
  if (gateways.length === 0 || gateways.includes('mesh')) {
    const hosts = list(spec.hosts).filter((h): h is string => typeof h === 'string');
    if (hosts.length === 0) return undefined;
    for (const h of hosts) {
      const svc = ctx.serviceFor(ctx.resolve(h, vs.metadata.namespace));
      if (svc === undefined) return undefined;
      for (const e of ctx.hosts.lookup(ctx.resolve(h, vs.metadata.namespace), new Set(['*'])).visible) {
        if (e.resource === svc) e.ports.forEach((p) => out.add(p));
      }
    }
  }
  for (const g of gateways) {
    if (g === 'mesh') continue;
    const { namespace, name } = parseGatewayRef(g, vs.metadata.namespace);
    const gw = ctx.find(ResourceTypes.IstioGateway, namespace, name);
    if (gw === undefined) return undefined;
    for (const s of list(view<IstioGatewayView>(gw).servers)) {
      if (typeof s?.port?.number !== 'number') return undefined;
      out.add(s.port.number);
    }
  }
  return out;
}

function checkRouteList(ctx: AnalysisContext, scope: VsScope, routes: readonly RouteDestination[], path: string): void {
  routes.forEach((rd, j) => {
    const at = `${path}.route[${j}]`;
    if (isObject(rd?.destination) && typeof rd.destination.host === 'string' && rd.destination.host !== '') {
      checkDestination(ctx, scope, rd.destination, `${at}.destination`);
    } else if (rd === null || typeof rd !== 'object' || rd.destination === undefined || isObject(rd.destination)) {
      ctx.report(scope.vs, 'error', 'VS_HOST_NOT_FOUND', `${at} has no destination host: requests routed to it fail`, at);
    }
  });
  if (routes.length > 1) {
    const weights = routes.map((rd) => (typeof rd?.weight === 'number' ? rd.weight : 0));
    const sum = weights.reduce((a, b) => a + b, 0);
    if (sum === 0) {
      ctx.report(scope.vs, 'error', 'WEIGHTS_NOT_100',
        `${path}: ${routes.length} destinations but no weight is set (sum 0), so no destination receives traffic`, `${path}.route`);
    } else if (sum !== 100) {
      ctx.report(scope.vs, 'warning', 'WEIGHTS_NOT_100',
        `${path}: destination weights ${weights.join(' + ')} = ${sum}, not 100; they are applied as relative proportions`, `${path}.route`);
    }
  }
}

interface RulesIndex {
  /** The DestinationRules for `target` (a canonical host), in ctx.destinationRules order. */
  rulesFor(target: string): readonly AnalysisContext['destinationRules'][number][];
}

// Built once per analysis: a scan of every rule per destination was quadratic (10,000 services
// with 1,000 rules spent seconds here on every config change).
const rulesIndexes = new WeakMap<AnalysisContext, RulesIndex>();

/**
 * A rule applies to `target` when its canonical host equals it, one of its host's aliases is it,
 * or (wildcard rule hosts) its host covers it.
 */
function rulesIndex(ctx: AnalysisContext): RulesIndex {
  let idx = rulesIndexes.get(ctx);
  if (idx !== undefined) return idx;
  const byHost = new Map<string, number[]>();
  const wildcards: number[] = [];
  ctx.destinationRules.forEach((dr, i) => {
    const drHost = canonical(ctx, dr.host);
    if (drHost.startsWith('*')) {
      wildcards.push(i);
      return;
    }
    for (const key of new Set([drHost, ...kubernetesServiceAliases(dr.host, ctx.domainSuffix)])) {
      let l = byHost.get(key);
      if (l === undefined) byHost.set(key, (l = []));
      l.push(i);
    }
  });
  idx = {
    rulesFor(target) {
      const hits = [...(byHost.get(target) ?? [])];
      for (const i of wildcards) if (hostMatches(canonical(ctx, ctx.destinationRules[i].host), target)) hits.push(i);
      return hits.sort((a, b) => a - b).map((i) => ctx.destinationRules[i]);
    },
  };
  rulesIndexes.set(ctx, idx);
  return idx;
}

/** The FQDN of the Kubernetes Service a host names, or the host itself. */
function canonical(ctx: AnalysisContext, host: string): string {
  const s = ctx.serviceFor(host);
  return s === undefined ? host : `${s.metadata.name}.${s.metadata.namespace}.svc.${ctx.domainSuffix}`.toLowerCase();
}

function checkDestination(ctx: AnalysisContext, scope: VsScope, d: Destination, path: string): void {
  if (typeof d.host !== 'string' || d.host === '') return;
  const vs = scope.vs;
  const host = ctx.resolve(d.host, vs.metadata.namespace);
  const found = ctx.hosts.lookup(host, scope.viewers);
  if (found.visible.length === 0) {
    ctx.report(vs, 'error', 'VS_HOST_NOT_FOUND', `destination host '${d.host}' (${host}) ${notVisibleWhy(found.hidden, scope.viewers)}`, `${path}.host`);
    return;
  }
  const port = d.port?.number;
  if (typeof port === 'number') checkPort(ctx, vs, host, d.host, found.visible, port, `${path}.port.number`);
  else checkPortRequired(ctx, scope, host, d.host, found.visible, path);
  if (typeof d.subset === 'string' && d.subset !== '') {
    const target = canonical(ctx, host);
    const rules = rulesIndex(ctx).rulesFor(target);
    const defined = rules.some((dr) => list(view<DestinationRuleView>(dr.resource).subsets).some((s) => s?.name === d.subset));
    if (!defined) {
      const why = rules.length === 0
        ? `no DestinationRule is defined for host '${target}'`
        : `DestinationRule ${rules.map((r) => `${r.resource.metadata.namespace}/${r.resource.metadata.name}`).join(', ')} defines subsets [${rules
            .flatMap((r) => list(view<DestinationRuleView>(r.resource).subsets).map((s) => s?.name))
            .join(', ')}]`;
      ctx.report(vs, 'error', 'SUBSET_NOT_FOUND', `subset '${d.subset}' of host '${d.host}' is not defined: ${why}`, `${path}.subset`);
    }
  }
}

/** The declared ports of the service a destination names exactly (not through a wildcard entry), or undefined. */
function portsOf(ctx: AnalysisContext, host: string, entries: readonly HostEntry[]): number[] | undefined {
  const svc = ctx.serviceFor(host);
  const exact = svc !== undefined ? entries.filter((e) => e.resource === svc) : entries.filter((e) => e.host === host);
  if (exact.length === 0) return undefined;
  const ports = [...new Set(exact.flatMap((e) => e.ports))];
  return ports.length === 0 ? undefined : ports;
}

function checkPort(ctx: AnalysisContext, vs: Resource, host: string, written: string, entries: readonly HostEntry[], port: number, path: string): void {
  const ports = portsOf(ctx, host, entries);
  // A service with no declared ports (headless, ExternalName) or a wildcard-only match: nothing to compare.
  if (ports === undefined || ports.includes(port)) return;
  ctx.report(vs, 'error', 'DESTINATION_PORT_NOT_FOUND',
    `destination '${written}' port ${port} is not a port of the service (ports: ${ports.join(', ')})`, path);
}

function checkPortRequired(ctx: AnalysisContext, scope: VsScope, host: string, written: string, entries: readonly HostEntry[], path: string): void {
  const ports = portsOf(ctx, host, entries);
  if (ports === undefined || ports.length < 2) return;
  if (scope.ports === undefined) {
    ctx.report(scope.vs, 'warning', 'DESTINATION_PORT_REQUIRED',
      `destination '${written}' has ports ${ports.join(', ')} and names none; requests go to the port they arrived on, which this VirtualService does not make known: set destination.port`, `${path}.host`);
    return;
  }
  const missing = [...scope.ports].filter((p) => !ports.includes(p));
  if (missing.length === 0) return;
  ctx.report(scope.vs, 'error', 'DESTINATION_PORT_REQUIRED',
    `destination '${written}' has ports ${ports.join(', ')} and names none, so requests arriving on port ${missing.join(', ')} would go to that port, which it does not have: set destination.port`, `${path}.host`);
}
