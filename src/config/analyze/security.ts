/**
 * Security policy checks.
 * - JWKS_INVALID (error): a RequestAuthentication jwtRule whose inline `jwks` is not a JWKS
 *   (not JSON, or no `keys` array); the control plane keeps serving the rule's last good version.
 * - JWT_NO_KEYS (warning): a RequestAuthentication jwtRule with neither `jwks` nor `jwksUri`.
 *   Istio then discovers the keys from `<issuer>/.well-known/openid-configuration` at config
 *   time, and if that fetch fails it installs keys that reject every token — so the config is
 *   legal but its behaviour depends on the network. We warn rather than fail.
 * - AUTHZ_UNKNOWN_CONDITION (error): an AuthorizationPolicy `when.key` outside Istio's documented
 *   condition list; Istio's validation rejects these.
 * - NAMESPACE_NOT_FOUND (warning, IST0101): an AuthorizationPolicy `source.namespaces` /
 *   `notNamespaces` entry (exact, `prefix*` or `*suffix`) names no namespace of the mesh. Judged only
 *   when the input declares its Namespaces; the namespaces its resources live in, the root
 *   namespace, `default` and Kubernetes' `kube-*` count as existing too.
 * (mTLS policy checks are in mtls.ts.)
 */
import { ResourceTypes } from '../resource.ts';
import { parseJwks } from '../jwks.ts';
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
      if (has(rule.jwks)) {
        const parsed = parseJwks(rule.jwks!);
        if ('error' in parsed) ctx.report(ra, 'error', 'JWKS_INVALID', `jwtRule ${i} (issuer '${rule.issuer ?? ''}'): jwks is ${parsed.error}`, `spec.jwtRules[${i}].jwks`);
      }
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
