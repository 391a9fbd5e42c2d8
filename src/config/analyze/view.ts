/**
 * The fields of Istio, Gateway API and Kubernetes specs that the analyzers read, typed
 * structurally and read defensively. The upstream models (src/config/kinds.ts) describe `oneof`
 * fields as unions of variants, which makes reading "whichever of prefix/exact/regex is set"
 * awkward; the analyzers only read, so a loose view that treats every field as optional is both
 * simpler and safer (a loader gap must never crash analysis).
 */
import type { Resource } from '../resource.ts';

export type Labels = Readonly<Record<string, string>>;

export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}
export interface HTTPMatchRequest {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly ignoreUriCase?: boolean;
  readonly [key: string]: unknown;
}
export interface Destination {
  readonly host?: string;
  readonly subset?: string;
  readonly port?: { readonly number?: number };
}
export interface RouteDestination {
  readonly destination?: Destination;
  readonly weight?: number;
}
export interface HTTPRoute {
  readonly name?: string;
  readonly match?: readonly HTTPMatchRequest[];
  readonly route?: readonly RouteDestination[];
  readonly mirror?: Destination;
  readonly mirrors?: readonly { readonly destination?: Destination }[];
  readonly redirect?: unknown;
  readonly directResponse?: unknown;
  readonly delegate?: unknown;
}
export interface L4Route {
  readonly match?: readonly Record<string, unknown>[];
  readonly route?: readonly RouteDestination[];
}
export interface VirtualServiceView {
  readonly hosts?: readonly string[];
  readonly gateways?: readonly string[];
  readonly exportTo?: readonly string[];
  readonly http?: readonly HTTPRoute[];
  readonly tcp?: readonly L4Route[];
  readonly tls?: readonly L4Route[];
}

export interface TLSSettings {
  readonly mode?: string;
}
export interface TrafficPolicy {
  readonly tls?: TLSSettings;
  readonly portLevelSettings?: readonly { readonly port?: { readonly number?: number }; readonly tls?: TLSSettings }[];
}
export interface DestinationRuleView {
  readonly host?: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: readonly { readonly name?: string; readonly labels?: Labels; readonly trafficPolicy?: TrafficPolicy }[];
  readonly exportTo?: readonly string[];
  readonly workloadSelector?: { readonly matchLabels?: Labels };
}

export interface IstioGatewayView {
  readonly selector?: Labels;
  readonly servers?: readonly {
    readonly port?: { readonly number?: number; readonly protocol?: string; readonly name?: string };
    readonly hosts?: readonly string[];
    readonly tls?: { readonly mode?: string; readonly credentialName?: string; readonly credentialNames?: readonly string[] };
  }[];
}

export interface ServiceEntryView {
  readonly hosts?: readonly string[];
  readonly ports?: readonly { readonly number?: number }[];
  readonly workloadSelector?: { readonly labels?: Labels };
}

export interface WorkloadEntryView {
  readonly labels?: Labels;
}

export interface ServiceView {
  readonly selector?: Labels;
  readonly ports?: readonly { readonly name?: string; readonly port?: number; readonly targetPort?: number | string }[];
  readonly type?: string;
}

export interface PeerAuthenticationView {
  readonly selector?: { readonly matchLabels?: Labels };
  readonly mtls?: { readonly mode?: string };
  readonly portLevelMtls?: Readonly<Record<string, { readonly mode?: string }>>;
}

export interface JWTRule {
  readonly issuer?: string;
  readonly jwks?: string;
  readonly jwksUri?: string;
}
export interface RequestAuthenticationView {
  readonly selector?: { readonly matchLabels?: Labels };
  readonly jwtRules?: readonly JWTRule[];
}

export interface AuthorizationPolicyView {
  readonly selector?: { readonly matchLabels?: Labels };
  readonly rules?: readonly {
    readonly from?: readonly { readonly source?: { readonly namespaces?: readonly string[]; readonly notNamespaces?: readonly string[] } }[];
    readonly when?: readonly { readonly key?: string }[];
  }[];
}

export interface SelectorPolicyView {
  readonly selector?: { readonly matchLabels?: Labels };
  readonly workloadSelector?: { readonly labels?: Labels };
  readonly targetRef?: unknown;
  readonly targetRefs?: readonly unknown[];
}

export interface ParentRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly sectionName?: string;
  readonly port?: number;
}
export interface BackendRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly weight?: number;
}
export interface RouteView {
  readonly parentRefs?: readonly ParentRef[];
  readonly hostnames?: readonly string[];
  readonly rules?: readonly { readonly backendRefs?: readonly BackendRef[] }[];
}

export interface SecretObjectRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
}
export interface GatewayView {
  readonly gatewayClassName?: string;
  readonly listeners?: readonly {
    readonly name?: string;
    readonly tls?: { readonly mode?: string; readonly certificateRefs?: readonly SecretObjectRef[] };
  }[];
}

export interface ReferenceGrantView {
  readonly from?: readonly { readonly group?: string; readonly kind?: string; readonly namespace?: string }[];
  readonly to?: readonly { readonly group?: string; readonly kind?: string; readonly name?: string }[];
}

/** The spec of `r` as the loose view `T` (a missing spec reads as `{}`). */
export function view<T>(r: Resource): T {
  const s = r.spec;
  return (s !== null && typeof s === 'object' ? s : {}) as T;
}

/** Arrays read defensively: anything that is not an array is empty. */
export function list<T>(v: readonly T[] | undefined): readonly T[] {
  return Array.isArray(v) ? v : [];
}

/** Label maps read defensively. */
export function labelsOf(v: unknown): Labels {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Labels) : {};
}

/** True for a non-null, non-array object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
