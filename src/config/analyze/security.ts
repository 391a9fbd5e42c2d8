/**
 * Security policy checks.
 * - JWT_NO_KEYS (warning): a RequestAuthentication jwtRule with neither `jwks` nor `jwksUri`.
 *   Istio then discovers the keys from `<issuer>/.well-known/openid-configuration` at config
 *   time, and if that fetch fails it installs keys that reject every token — so the config is
 *   legal but its behaviour depends on the network. We warn rather than fail.
 * - AUTHZ_UNKNOWN_CONDITION (error): an AuthorizationPolicy `when.key` outside Istio's documented
 *   condition list; Istio's validation rejects these.
 * - MTLS_CONFLICT (warning): a PeerAuthentication makes a workload port STRICT while a
 *   DestinationRule for the Service in front of it sets `tls.mode: DISABLE` for that port, so
 *   clients send plaintext the server refuses (istioctl's former IST0113).
 * - NAMESPACE_NOT_FOUND (warning, IST0101): an AuthorizationPolicy `source.namespaces` /
 *   `notNamespaces` entry (exact, `prefix*` or `*suffix`) names no namespace of the mesh. Judged only
 *   when the input declares its Namespaces; the namespaces its resources live in, the root
 *   namespace, `default` and Kubernetes' `kube-*` count as existing too.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { selectorMatches } from './workloads.ts';
import { labelsOf, list, view, type AuthorizationPolicyView, type DestinationRuleView, type Labels, type PeerAuthenticationView, type RequestAuthenticationView, type ServiceView, type TrafficPolicy } from '../views.ts';

const PLAIN_KEYS = new Set([
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'request.auth.principal',
  'request.auth.audiences', 'request.auth.presenter', 'destination.ip', 'destination.port', 'connection.sni',
]);
const BRACKET_KEY = /^(request\.headers|request\.auth\.claims)\[[^\]]+\](\[[^\]]+\])*$/;

/** True when `key` is one of Istio's AuthorizationPolicy condition keys. */
export function isKnownConditionKey(key: string): boolean {
  if (PLAIN_KEYS.has(key)) return true;
  if (key.startsWith('experimental.envoy.filters.') && key.length > 'experimental.envoy.filters.'.length) return true;
  if (key.startsWith('request.headers[')) return /^request\.headers\[[^\]]+\]$/.test(key);
  return BRACKET_KEY.test(key);
}

/** Runs the security checks. */
export function checkSecurity(ctx: AnalysisContext): void {
  for (const ra of ctx.of(ResourceTypes.RequestAuthentication)) {
    list(view<RequestAuthenticationView>(ra).jwtRules).forEach((rule, i) => {
      if (rule === null || typeof rule !== 'object') return;
      const has = (v: unknown): boolean => typeof v === 'string' && v !== '';
      if (!has(rule.jwks) && !has(rule.jwksUri)) {
        ctx.report(ra, 'warning', 'JWT_NO_KEYS',
          `jwtRule ${i} (issuer '${rule.issuer ?? ''}') has neither jwks nor jwksUri; keys would be discovered from the issuer's OpenID configuration at config time, and every token is rejected if that fails`,
          `spec.jwtRules[${i}]`);
      }
    });
  }
  for (const ap of ctx.of(ResourceTypes.AuthorizationPolicy)) {
    list(view<AuthorizationPolicyView>(ap).rules).forEach((rule, i) => {
      list(rule?.when).forEach((cond, k) => {
        const key = cond?.key;
        if (typeof key !== 'string' || !isKnownConditionKey(key)) {
          ctx.report(ap, 'error', 'AUTHZ_UNKNOWN_CONDITION',
            `condition key '${String(key)}' is not an Istio authorization condition (e.g. request.headers[name], source.ip, source.namespace, request.auth.claims[name], destination.port)`,
            `spec.rules[${i}].when[${k}].key`);
        }
      });
    });
  }
  checkMtlsConflicts(ctx);
  checkPolicyNamespaces(ctx);
}

/** Istio's namespace match for authorization sources: `*`, `prefix*`, `*suffix` or the exact name. */
function namespaceMatches(pattern: string, ns: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return ns.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return ns.startsWith(pattern.slice(0, -1));
  return pattern === ns;
}

function checkPolicyNamespaces(ctx: AnalysisContext): void {
  const declared = ctx.of(ResourceTypes.Namespace);
  const policies = ctx.of(ResourceTypes.AuthorizationPolicy);
  if (declared.length === 0 || policies.length === 0) return;
  // Kubernetes creates default and kube-* in every cluster.
  const known = new Set<string>([ctx.rootNamespace, 'default', 'kube-system', 'kube-public', 'kube-node-lease', ...declared.map((n) => n.metadata.name)]);
  for (const t of Object.values(ResourceTypes)) for (const r of ctx.of(t)) known.add(r.metadata.namespace);
  for (const ap of policies) {
    list(view<AuthorizationPolicyView>(ap).rules).forEach((rule, i) => {
      list(rule?.from).forEach((from, j) => {
        for (const field of ['namespaces', 'notNamespaces'] as const) {
          list(from?.source?.[field]).forEach((pattern, k) => {
            if (typeof pattern !== 'string' || [...known].some((ns) => namespaceMatches(pattern, ns))) return;
            ctx.report(ap, 'warning', 'NAMESPACE_NOT_FOUND',
              `source ${field} entry '${pattern}' matches no namespace of the mesh (declared: ${[...declared.map((n) => n.metadata.name)].sort().join(', ')})`,
              `spec.rules[${i}].from[${j}].source.${field}[${k}]`);
          });
        }
      });
    });
  }
}

type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE' | undefined;

/** The PeerAuthentication mode for a Service's workloads at a target port, most specific policy first. */
function peerMode(ctx: AnalysisContext, ns: string, selector: Labels, targetPort: number): { mode: Mode; pa?: Resource } {
  const all = ctx.of(ResourceTypes.PeerAuthentication);
  const modeOf = (pa: Resource): Mode => {
    const spec = view<PeerAuthenticationView>(pa);
    const port = spec.portLevelMtls?.[String(targetPort)]?.mode;
    const m = port !== undefined && port !== 'UNSET' ? port : spec.mtls?.mode;
    return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined;
  };
  const levels: Resource[][] = [
    // Workload level: a selector the Service's own selector implies (so it surely selects its pods).
    all.filter((pa) => {
      if (pa.metadata.namespace !== ns) return false;
      const sel = labelsOf(view<PeerAuthenticationView>(pa).selector?.matchLabels);
      return Object.keys(sel).length > 0 && Object.keys(selector).length > 0 && selectorMatches(sel, selector);
    }),
    all.filter((pa) => pa.metadata.namespace === ns && Object.keys(labelsOf(view<PeerAuthenticationView>(pa).selector?.matchLabels)).length === 0),
    all.filter((pa) => pa.metadata.namespace === ctx.rootNamespace && Object.keys(labelsOf(view<PeerAuthenticationView>(pa).selector?.matchLabels)).length === 0),
  ];
  for (const level of levels) {
    for (const pa of level) {
      const m = modeOf(pa);
      if (m !== undefined) return { mode: m, pa };
    }
  }
  return { mode: undefined };
}

function tlsModeAt(tp: TrafficPolicy | undefined, port: number): string | undefined {
  if (tp === undefined || tp === null) return undefined;
  const pl = list(tp.portLevelSettings).find((p) => p?.port?.number === port);
  return pl?.tls?.mode ?? tp.tls?.mode;
}

function checkMtlsConflicts(ctx: AnalysisContext): void {
  if (ctx.of(ResourceTypes.PeerAuthentication).length === 0) return;
  for (const { host, resource: dr } of ctx.destinationRules) {
    const svc = ctx.serviceFor(host);
    if (svc === undefined) continue;
    const sspec = view<ServiceView>(svc);
    const selector = labelsOf(sspec.selector);
    const spec = view<DestinationRuleView>(dr);
    const policies: [TrafficPolicy | undefined, string][] = [[spec.trafficPolicy, 'spec.trafficPolicy']];
    list(spec.subsets).forEach((s, i) => policies.push([s?.trafficPolicy, `spec.subsets[${i}].trafficPolicy`]));
    let reported = false;
    for (const p of list(sspec.ports)) {
      if (reported || typeof p?.port !== 'number') continue;
      const target = typeof p.targetPort === 'number' ? p.targetPort : p.port;
      for (const [tp, path] of policies) {
        // A subset without its own tls inherits the top-level policy, already checked.
        const mode = tlsModeAt(tp, p.port);
        if (mode !== 'DISABLE') continue;
        const peer = peerMode(ctx, svc.metadata.namespace, selector, target);
        if (peer.mode === 'STRICT' && peer.pa !== undefined) {
          ctx.report(dr, 'warning', 'MTLS_CONFLICT',
            `tls mode DISABLE for ${host} port ${p.port}, but PeerAuthentication ${peer.pa.metadata.namespace}/${peer.pa.metadata.name} requires STRICT mTLS on workload port ${target}: requests will fail`,
            `${path}.tls.mode`);
          reported = true;
          break;
        }
      }
    }
  }
}
