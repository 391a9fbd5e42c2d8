/**
 * VirtualService destinations: every `destination.host` of an http/tcp/tls route (and mirror) must
 * name a known service (a Kubernetes Service, short names resolved in the VirtualService's
 * namespace, or a ServiceEntry host, wildcards included) — VS_HOST_NOT_FOUND, as istioctl's
 * IST0101 does; every `subset` must be defined by a DestinationRule for that host —
 * SUBSET_NOT_FOUND; a `port.number` must be one of the service's ports — DESTINATION_PORT_NOT_FOUND;
 * route weights — WEIGHTS_NOT_100.
 *
 * Weights: Istio before 1.15 rejected multi-destination routes whose weights did not sum to 100;
 * since istio/istio#39544 weights are relative (`weight / sum`). Trellis follows current Istio, so
 * a sum other than 100 is only a warning (usually a typo in a canary split), while a sum of 0 over
 * several destinations sends traffic nowhere and is an error. A single destination needs no weight.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { hostAliases, hostCovers } from './hosts.ts';
import { isObject, list, view, type Destination, type DestinationRuleView, type RouteDestination, type ServiceEntryView, type ServiceView, type VirtualServiceView } from './view.ts';

/** Runs the destination checks over every VirtualService. */
export function checkDestinations(ctx: AnalysisContext): void {
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    const spec = view<VirtualServiceView>(vs);
    list(spec.http).forEach((route, i) => {
      if (route === null || typeof route !== 'object') return;
      checkRouteList(ctx, vs, list(route.route), `spec.http[${i}]`);
      if (isObject(route.mirror)) checkDestination(ctx, vs, route.mirror, `spec.http[${i}].mirror`);
      list(route.mirrors).forEach((m, k) => {
        if (isObject(m?.destination)) checkDestination(ctx, vs, m.destination, `spec.http[${i}].mirrors[${k}].destination`);
      });
    });
    for (const section of ['tcp', 'tls'] as const) {
      list(spec[section]).forEach((route, i) => {
        if (route === null || typeof route !== 'object') return;
        checkRouteList(ctx, vs, list(route.route), `spec.${section}[${i}]`);
      });
    }
  }
}

function checkRouteList(ctx: AnalysisContext, vs: Resource, routes: readonly RouteDestination[], path: string): void {
  routes.forEach((rd, j) => {
    if (isObject(rd?.destination)) checkDestination(ctx, vs, rd.destination, `${path}.route[${j}].destination`);
  });
  if (routes.length > 1) {
    const weights = routes.map((rd) => (typeof rd?.weight === 'number' ? rd.weight : 0));
    const sum = weights.reduce((a, b) => a + b, 0);
    if (sum === 0) {
      ctx.report(vs, 'error', 'WEIGHTS_NOT_100',
        `${path}: ${routes.length} destinations but no weight is set (sum 0), so no destination receives traffic`, `${path}.route`);
    } else if (sum !== 100) {
      ctx.report(vs, 'warning', 'WEIGHTS_NOT_100',
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
    for (const key of new Set([drHost, ...hostAliases(dr.host, ctx.domainSuffix)])) {
      let l = byHost.get(key);
      if (l === undefined) byHost.set(key, (l = []));
      l.push(i);
    }
  });
  idx = {
    rulesFor(target) {
      const hits = [...(byHost.get(target) ?? [])];
      for (const i of wildcards) if (hostCovers(canonical(ctx, ctx.destinationRules[i].host), target)) hits.push(i);
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

function checkDestination(ctx: AnalysisContext, vs: Resource, d: Destination, path: string): void {
  if (typeof d.host !== 'string' || d.host === '') return;
  const host = ctx.resolve(d.host, vs.metadata.namespace);
  if (!ctx.hostKnown(host)) {
    ctx.report(vs, 'error', 'VS_HOST_NOT_FOUND',
      `destination host '${d.host}' (${host}) is neither a Service nor a ServiceEntry host`, `${path}.host`);
    return;
  }
  const port = d.port?.number;
  if (typeof port === 'number') checkPort(ctx, vs, host, d.host, port, `${path}.port.number`);
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

function checkPort(ctx: AnalysisContext, vs: Resource, host: string, written: string, port: number, path: string): void {
  const svc = ctx.serviceFor(host);
  let ports: number[] | undefined;
  if (svc !== undefined) {
    ports = list(view<ServiceView>(svc).ports).map((p) => p?.port).filter((p): p is number => typeof p === 'number');
  } else {
    const entries = ctx.serviceEntryHosts.filter((e) => e.host === host);
    if (entries.length > 0) {
      ports = entries.flatMap((e) => list(view<ServiceEntryView>(e.resource).ports).map((p) => p?.number)).filter((p): p is number => typeof p === 'number');
    }
  }
  // A service with no declared ports (headless, ExternalName) or a wildcard-only match: nothing to compare.
  if (ports === undefined || ports.length === 0 || ports.includes(port)) return;
  ctx.report(vs, 'error', 'DESTINATION_PORT_NOT_FOUND',
    `destination '${written}' port ${port} is not a port of the service (ports: ${ports.join(', ')})`, path);
}
