/**
 * Istio Gateways and the VirtualServices bound to them: a VirtualService's `gateways` entries must
 * name an existing Gateway (`ns/name`, or a short name in the VirtualService's namespace; `mesh`
 * means the sidecars) — GATEWAY_NOT_FOUND; a TLS server's `credentialName` must name a Secret —
 * SECRET_NOT_FOUND; and two VirtualServices must not claim the same host on the same gateway —
 * VS_HOST_CONFLICT. For `mesh` that is an error: sidecars use only one of them (istioctl IST0109).
 * For a named gateway Istio merges the routes of both in creation order, which a directory of
 * files does not define, so it is a warning.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { selectorMatches, type AnalysisContext } from './context.ts';
import { isObject, labelsOf, list, view, type IstioGatewayView, type VirtualServiceView } from './view.ts';

/** Parses a VirtualService gateway reference into namespace and name. */
export function parseGatewayRef(ref: string, vsNamespace: string): { namespace: string; name: string } {
  const slash = ref.indexOf('/');
  if (slash >= 0) return { namespace: ref.slice(0, slash), name: ref.slice(slash + 1) };
  // Deprecated `name.namespace[.svc.cluster.local]` form.
  const dot = ref.indexOf('.');
  if (dot >= 0) return { namespace: ref.split('.')[1], name: ref.slice(0, dot) };
  return { namespace: vsNamespace, name: ref };
}

/** Gateway references of a VirtualService, `mesh` when none is given (Istio's default). */
function gatewaysOf(vs: Resource): string[] {
  const g = list(view<VirtualServiceView>(vs).gateways).filter((x): x is string => typeof x === 'string');
  return g.length === 0 ? ['mesh'] : g;
}

/** Runs GATEWAY_NOT_FOUND and VS_HOST_CONFLICT over VirtualServices, SECRET_NOT_FOUND over Istio Gateways. */
export function checkGateways(ctx: AnalysisContext): void {
  const claims = new Map<string, { vs: Resource; index: number; host: string }[]>();
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    const spec = view<VirtualServiceView>(vs);
    const explicit = list(spec.gateways);
    explicit.forEach((ref, i) => {
      if (typeof ref !== 'string' || ref === 'mesh') return;
      const { namespace, name } = parseGatewayRef(ref, vs.metadata.namespace);
      const found = ctx.find(ResourceTypes.IstioGateway, namespace, name) ?? ctx.find(ResourceTypes.Gateway, namespace, name);
      if (found === undefined) {
        ctx.report(vs, 'error', 'GATEWAY_NOT_FOUND', `gateway '${ref}' (${namespace}/${name}) is not defined`, `spec.gateways[${i}]`);
      }
    });
    for (const gw of gatewaysOf(vs)) {
      const gwKey = gw === 'mesh' ? 'mesh' : (({ namespace, name }) => `${namespace}/${name}`)(parseGatewayRef(gw, vs.metadata.namespace));
      list(spec.hosts).forEach((h, index) => {
        if (typeof h !== 'string') return;
        const host = ctx.resolve(h, vs.metadata.namespace);
        const key = `${gwKey}|${host}`;
        let l = claims.get(key);
        if (l === undefined) claims.set(key, (l = []));
        if (!l.some((c) => c.vs === vs)) l.push({ vs, index, host });
      });
    }
  }
  for (const [key, l] of claims) {
    if (l.length < 2) continue;
    const gw = key.slice(0, key.indexOf('|'));
    const visible = l.filter((c) => l.some((o) => o !== c && sharesVisibility(c.vs, o.vs)));
    for (const c of visible) {
      const others = visible.filter((o) => o !== c).map((o) => `${o.vs.metadata.namespace}/${o.vs.metadata.name}`);
      if (others.length === 0) continue;
      const mesh = gw === 'mesh';
      ctx.report(c.vs, mesh ? 'error' : 'warning', 'VS_HOST_CONFLICT',
        mesh
          ? `host '${c.host}' is also claimed for the mesh by VirtualService ${others.join(', ')}; sidecars use only one of them`
          : `host '${c.host}' on gateway ${gw} is also claimed by VirtualService ${others.join(', ')}; their routes are merged in an order the files do not define`,
        `spec.hosts[${c.index}]`);
    }
  }
  checkGatewaySecrets(ctx);
}

/** exportTo visibility overlap ('*' default, '.' = own namespace). */
function sharesVisibility(a: Resource, b: Resource): boolean {
  const ex = (r: Resource): Set<string> | undefined => {
    const e = list(view<VirtualServiceView>(r).exportTo).filter((x): x is string => typeof x === 'string');
    if (e.length === 0 || e.includes('*')) return undefined;
    return new Set(e.map((x) => (x === '.' ? r.metadata.namespace : x)));
  };
  const ea = ex(a);
  const eb = ex(b);
  if (ea === undefined || eb === undefined) return true;
  for (const n of ea) if (eb.has(n)) return true;
  return false;
}

const TLS_TERMINATING = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL']);

function checkGatewaySecrets(ctx: AnalysisContext): void {
  for (const gw of ctx.of(ResourceTypes.IstioGateway)) {
    const spec = view<IstioGatewayView>(gw);
    // Istio reads the secret from the gateway workload's namespace; we accept the Gateway's own
    // namespace and those of the workloads its selector matches.
    const namespaces = new Set([gw.metadata.namespace]);
    const sel = labelsOf(spec.selector);
    for (const w of ctx.workloadLabels) if (!w.partial && selectorMatches(sel, w.labels)) namespaces.add(w.namespace);
    list(spec.servers).forEach((server, i) => {
      const tls = server?.tls;
      if (!isObject(tls) || !TLS_TERMINATING.has(tls.mode ?? '')) return;
      const names: [string, string][] = [];
      if (typeof tls.credentialName === 'string' && tls.credentialName !== '') names.push([tls.credentialName, `spec.servers[${i}].tls.credentialName`]);
      list(tls.credentialNames).forEach((n, k) => {
        if (typeof n === 'string') names.push([n, `spec.servers[${i}].tls.credentialNames[${k}]`]);
      });
      for (const [raw, path] of names) {
        let name = raw;
        if (name.startsWith('kubernetes://')) name = name.slice('kubernetes://'.length);
        else if (name.includes('://')) continue; // another SDS provider: not ours to check
        const found = [...namespaces].some((ns) => ctx.find(ResourceTypes.Secret, ns, name) !== undefined);
        if (!found) {
          ctx.report(gw, 'error', 'SECRET_NOT_FOUND',
            `TLS credential '${raw}' of server ${i} names no Secret in namespace ${[...namespaces].join(', ')}`, path);
        }
      }
    });
  }
}
