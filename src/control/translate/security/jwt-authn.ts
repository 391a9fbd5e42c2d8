/**
 * RequestAuthentication -> envoy.filters.http.jwt_authn, as istiod builds it: every jwtRule of
 * the RequestAuthentications selecting the proxy (sorted by issuer) is a provider `origins-<i>`
 * with its issuer, audiences, token locations (fromHeaders with prefix, fromParams, fromCookies),
 * forwardOriginalToken, outputPayloadToHeader, outputClaimToHeaders, the payload in dynamic
 * metadata under `payload` (where RBAC reads requestPrincipals and claims; `scope` and
 * `permission` split on spaces) and the key set inline. The requirement admits a request without
 * a token and refuses one with a bad token: one provider `{P or allow_missing}`; several
 * `P1 or P2 ... or AND_i{Pi or allow_missing}`. Keys come from the rule's `jwks`, else from the
 * control plane's JWKS resolver (jwksUri or OpenID discovery); with neither, a key set no token
 * can match.
 */
import { ResourceTypes } from '../../../config/resource.ts';
import type { MeshSnapshot } from '../../snapshot/snapshot.ts';
import type { ProxyNode } from '../../proxy-node.ts';
import { policyAttaches } from '../policy-attachment.ts';
import type { TargetablePolicyView } from '../../../config/policy-target-refs.ts';

type Json = Record<string, unknown>;

export const JwtAuthnType = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

/** A JWKS no token can match (an RSA public key whose private half was discarded). */
export const RejectAllJwks = '{"keys":[{"kty":"RSA","n":"ud2OOw0NM8qmsp9KYlnRCNLXkDkhSh83Dnf0SSCzCDp-ny0FPAHfXVAb6cgh7WgA_glVVyuzMl_gwumNcRROZON_dj7G7aN0PITpwgR1D7UaUXsHwYHjY0ZYGDt61HNIfforGnOLLQuaBniUMyv9EvgFEXs1fEm6-krlFUpd4BrR6Bdp7hwnlhmokldh92upDjvuKsLUAdmFLWXCxarZ5R8bnxQFzUS7qaTVVLD8ex_s8wznIU5bP54wlCvoqtOvxfJv3Y42PD7xt3vpCRNk2HFEjojTosmXGJof2sa-PXmYZQSfCF7EjKET0N7UguHsKEgz_Ay7t_YNKAN5AR3NUQ","e":"AQAB","kid":"trellis-no-keys","alg":"RS256","use":"sig"}]}';

/** One jwtRule as written. */
export interface JwtRuleView {
  readonly issuer?: string;
  readonly audiences?: readonly string[];
  readonly jwks?: string;
  readonly jwksUri?: string;
  readonly fromHeaders?: readonly { readonly name?: string; readonly prefix?: string }[];
  readonly fromParams?: readonly string[];
  readonly fromCookies?: readonly string[];
  readonly forwardOriginalToken?: boolean;
  readonly outputPayloadToHeader?: string;
  readonly outputClaimToHeaders?: readonly { readonly header?: string; readonly claim?: string }[];
  readonly spaceDelimitedClaims?: readonly string[];
}

interface RequestAuthenticationView extends TargetablePolicyView {
  readonly jwtRules?: readonly JwtRuleView[];
}

/** The jwtRules that apply to `proxy`, sorted by issuer (Istio's deterministic order). */
export function jwtRulesFor(snapshot: MeshSnapshot, proxy: ProxyNode): JwtRuleView[] {
  const rules: JwtRuleView[] = [];
  for (const r of snapshot.list(ResourceTypes.RequestAuthentication)) {
    const spec = (r.spec ?? {}) as RequestAuthenticationView;
    if (policyAttaches(r, spec, proxy, snapshot.mesh.rootNamespace)) rules.push(...(spec.jwtRules ?? []));
  }
  return rules.sort((a, b) => (a.issuer ?? '').localeCompare(b.issuer ?? ''));
}

/** Every (issuer, jwksUri) without inline keys in the mesh, for the JWKS resolver. */
export function jwksSourcesOf(snapshot: MeshSnapshot): { issuer: string; jwksUri: string | undefined; resource: { kind: string; namespace: string; name: string }; field: string }[] {
  const out: { issuer: string; jwksUri: string | undefined; resource: { kind: string; namespace: string; name: string }; field: string }[] = [];
  for (const r of snapshot.list(ResourceTypes.RequestAuthentication)) {
    ((r.spec ?? {}) as RequestAuthenticationView).jwtRules?.forEach((rule, i) => {
      if (rule.issuer === undefined || (rule.jwks !== undefined && rule.jwks !== '')) return;
      out.push({
        issuer: rule.issuer, jwksUri: rule.jwksUri || undefined,
        resource: { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name },
        field: rule.jwksUri ? `spec.jwtRules[${i}].jwksUri` : `spec.jwtRules[${i}].issuer`,
      });
    });
  }
  return out;
}

function provider(rule: JwtRuleView, jwks: string): Json {
  const p: Json = { issuer: rule.issuer ?? '' };
  if (rule.audiences !== undefined && rule.audiences.length > 0) p.audiences = [...rule.audiences];
  if (rule.forwardOriginalToken === true) p.forward = true;
  if (rule.outputPayloadToHeader) p.forward_payload_header = rule.outputPayloadToHeader;
  if (rule.fromHeaders !== undefined && rule.fromHeaders.length > 0) {
    p.from_headers = rule.fromHeaders.map((h) => ({ name: h.name ?? '', ...(h.prefix ? { value_prefix: h.prefix } : {}) }));
  }
  if (rule.fromParams !== undefined && rule.fromParams.length > 0) p.from_params = [...rule.fromParams];
  if (rule.fromCookies !== undefined && rule.fromCookies.length > 0) p.from_cookies = [...rule.fromCookies];
  p.local_jwks = { inline_string: jwks };
  p.payload_in_metadata = 'payload';
  p.normalize_payload_in_metadata = { space_delimited_claims: [...new Set(['permission', 'scope', ...(rule.spaceDelimitedClaims ?? [])])].sort() };
  if (rule.outputClaimToHeaders !== undefined && rule.outputClaimToHeaders.length > 0) {
    p.claim_to_headers = rule.outputClaimToHeaders.map((c) => ({ header_name: c.header ?? '', claim_name: c.claim ?? '' }));
  }
  return p;
}

/** The jwt_authn HTTP filter for `proxy`, or undefined when no RequestAuthentication applies. */
export function jwtAuthnFilter(snapshot: MeshSnapshot, proxy: ProxyNode): Json | undefined {
  const rules = jwtRulesFor(snapshot, proxy);
  if (rules.length === 0) return undefined;
  const providers: Json = {};
  const inner: Json[] = [];
  const outer: Json[] = [];
  rules.forEach((rule, i) => {
    const name = `origins-${i}`;
    const jwks = rule.jwks || (rule.issuer !== undefined ? snapshot.jwks(rule.issuer, rule.jwksUri || undefined) : undefined) || RejectAllJwks;
    providers[name] = provider(rule, jwks);
    inner.push({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
    outer.push({ provider_name: name });
  });
  const requires = inner.length === 1 ? inner[0] : { requires_any: { requirements: [...outer, { requires_all: { requirements: inner } }] } };
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: { '@type': JwtAuthnType, providers, rules: [{ match: { prefix: '/' }, requires }], bypass_cors_preflight: true },
  };
}
