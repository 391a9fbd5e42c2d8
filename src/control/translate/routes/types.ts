/**
 * The narrow input seam of route translation: the few spec fields of VirtualService, Istio
 * Gateway, DestinationRule, Gateway API Gateway / HTTPRoute / GRPCRoute / ReferenceGrant that
 * routing reads, written as structural types (every field optional, arrays readonly) so that the
 * upstream-typed resources from `src/config/kinds.ts` are assignable to them unchanged. Keeping
 * our own narrow view decouples this folder from how the snapshot is assembled.
 */

import type { Resource } from '../../../config/resource.ts';
import type { ServiceInfo } from '../../../registry/types.ts';

type Arr<T> = readonly T[];

/** Istio StringMatch (one of exact / prefix / regex). */
export interface StringMatchSpec {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface PortSelectorSpec {
  readonly number?: number;
}

export interface DestinationSpec {
  readonly host?: string;
  readonly subset?: string;
  readonly port?: PortSelectorSpec;
}

export interface HeaderOpsSpec {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: Arr<string>;
}

export interface HeadersSpec {
  readonly request?: HeaderOpsSpec;
  readonly response?: HeaderOpsSpec;
}

export interface HTTPMatchRequestSpec {
  readonly name?: string;
  readonly uri?: StringMatchSpec;
  readonly scheme?: StringMatchSpec;
  readonly method?: StringMatchSpec;
  readonly authority?: StringMatchSpec;
  readonly headers?: Readonly<Record<string, StringMatchSpec>>;
  readonly withoutHeaders?: Readonly<Record<string, StringMatchSpec>>;
  readonly queryParams?: Readonly<Record<string, StringMatchSpec>>;
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly sourceNamespace?: string;
  readonly gateways?: Arr<string>;
  readonly ignoreUriCase?: boolean;
}

export interface HTTPRouteDestinationSpec {
  readonly destination?: DestinationSpec;
  readonly weight?: number;
  readonly headers?: HeadersSpec;
}

export interface PercentSpec {
  readonly value?: number;
}

export interface VirtualServiceHTTPSpec {
  readonly name?: string;
  readonly match?: Arr<HTTPMatchRequestSpec>;
  readonly route?: Arr<HTTPRouteDestinationSpec>;
  readonly redirect?: {
    readonly uri?: string;
    readonly authority?: string;
    readonly port?: number;
    readonly derivePort?: string;
    readonly scheme?: string;
    readonly redirectCode?: number;
  };
  readonly directResponse?: { readonly status?: number; readonly body?: { readonly string?: string; readonly bytes?: string } };
  readonly delegate?: { readonly name?: string; readonly namespace?: string };
  readonly rewrite?: {
    readonly uri?: string;
    readonly authority?: string;
    readonly uriRegexRewrite?: { readonly match?: string; readonly rewrite?: string };
  };
  readonly timeout?: string;
  readonly retries?: {
    readonly attempts?: number;
    readonly perTryTimeout?: string;
    readonly retryOn?: string;
    readonly retryRemoteLocalities?: boolean;
  };
  readonly fault?: {
    readonly delay?: { readonly fixedDelay?: string; readonly percentage?: PercentSpec; readonly percent?: number };
    readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly percentage?: PercentSpec };
  };
  readonly mirror?: DestinationSpec;
  readonly mirrorPercentage?: PercentSpec;
  readonly mirrorPercent?: number;
  readonly mirrors?: Arr<{ readonly destination?: DestinationSpec; readonly percentage?: PercentSpec }>;
  readonly corsPolicy?: {
    readonly allowOrigins?: Arr<StringMatchSpec>;
    readonly allowOrigin?: Arr<string>;
    readonly allowMethods?: Arr<string>;
    readonly allowHeaders?: Arr<string>;
    readonly exposeHeaders?: Arr<string>;
    readonly maxAge?: string;
    readonly allowCredentials?: boolean;
  };
  readonly headers?: HeadersSpec;
}

export interface VirtualServiceSpec {
  readonly hosts?: Arr<string>;
  readonly gateways?: Arr<string>;
  readonly http?: Arr<VirtualServiceHTTPSpec>;
  readonly exportTo?: Arr<string>;
}

export interface IstioServerSpec {
  readonly port?: { readonly number?: number; readonly name?: string; readonly protocol?: string };
  readonly hosts?: Arr<string>;
  readonly tls?: { readonly httpsRedirect?: boolean; readonly mode?: string };
  readonly name?: string;
}

export interface IstioGatewaySpec {
  readonly selector?: Readonly<Record<string, string>>;
  readonly servers?: Arr<IstioServerSpec>;
}

export interface DestinationRuleSpec {
  readonly host?: string;
  readonly subsets?: Arr<{ readonly name?: string; readonly labels?: Readonly<Record<string, string>> }>;
  readonly exportTo?: Arr<string>;
}

/** Gateway API ParentReference. */
export interface ParentRefSpec {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface HTTPHeaderMatchSpec {
  readonly type?: string;
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatchSpec {
  readonly path?: { readonly type?: string; readonly value?: string };
  readonly headers?: Arr<HTTPHeaderMatchSpec>;
  readonly queryParams?: Arr<HTTPHeaderMatchSpec>;
  readonly method?: string;
}

export interface GRPCRouteMatchSpec {
  readonly method?: { readonly type?: string; readonly service?: string; readonly method?: string };
  readonly headers?: Arr<HTTPHeaderMatchSpec>;
}

export interface HeaderModifierSpec {
  readonly set?: Arr<{ readonly name: string; readonly value: string }>;
  readonly add?: Arr<{ readonly name: string; readonly value: string }>;
  readonly remove?: Arr<string>;
}

export interface BackendObjectRefSpec {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
}

export interface PathModifierSpec {
  readonly type?: string;
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

export interface RouteFilterSpec {
  readonly type?: string;
  readonly requestHeaderModifier?: HeaderModifierSpec;
  readonly responseHeaderModifier?: HeaderModifierSpec;
  readonly requestRedirect?: {
    readonly scheme?: string;
    readonly hostname?: string;
    readonly path?: PathModifierSpec;
    readonly port?: number;
    readonly statusCode?: number;
  };
  readonly urlRewrite?: { readonly hostname?: string; readonly path?: PathModifierSpec };
  readonly requestMirror?: {
    readonly backendRef?: BackendObjectRefSpec;
    readonly percent?: number;
    readonly fraction?: { readonly numerator?: number; readonly denominator?: number };
  };
  readonly cors?: {
    readonly allowOrigins?: Arr<string>;
    readonly allowCredentials?: boolean;
    readonly allowMethods?: Arr<string>;
    readonly allowHeaders?: Arr<string>;
    readonly exposeHeaders?: Arr<string>;
    readonly maxAge?: number;
  };
  readonly extensionRef?: { readonly group?: string; readonly kind?: string; readonly name?: string };
}

export interface BackendRefSpec extends BackendObjectRefSpec {
  readonly weight?: number;
  readonly filters?: Arr<RouteFilterSpec>;
}

export interface RouteRuleSpec<M> {
  readonly name?: string;
  readonly matches?: Arr<M>;
  readonly filters?: Arr<RouteFilterSpec>;
  readonly backendRefs?: Arr<BackendRefSpec>;
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
  readonly retry?: { readonly codes?: Arr<number>; readonly attempts?: number; readonly backoff?: string };
}

export interface HTTPRouteSpec {
  readonly parentRefs?: Arr<ParentRefSpec>;
  readonly hostnames?: Arr<string>;
  readonly rules?: Arr<RouteRuleSpec<HTTPRouteMatchSpec>>;
}

export interface GRPCRouteSpec {
  readonly parentRefs?: Arr<ParentRefSpec>;
  readonly hostnames?: Arr<string>;
  readonly rules?: Arr<RouteRuleSpec<GRPCRouteMatchSpec>>;
}

export interface ListenerSpec {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: string;
  readonly tls?: { readonly mode?: string };
  readonly allowedRoutes?: {
    readonly namespaces?: {
      readonly from?: string;
      readonly selector?: {
        readonly matchLabels?: Readonly<Record<string, string>>;
        readonly matchExpressions?: Arr<{ readonly key: string; readonly operator: string; readonly values?: Arr<string> }>;
      };
    };
    readonly kinds?: Arr<{ readonly group?: string; readonly kind: string }>;
  };
}

export interface GatewaySpec {
  readonly gatewayClassName?: string;
  readonly listeners?: Arr<ListenerSpec>;
}

export interface ReferenceGrantSpec {
  readonly from?: Arr<{ readonly group?: string; readonly kind?: string; readonly namespace?: string }>;
  readonly to?: Arr<{ readonly group?: string; readonly kind?: string; readonly name?: string }>;
}

export type VirtualServiceResource = Resource<VirtualServiceSpec>;
export type IstioGatewayResource = Resource<IstioGatewaySpec>;
export type DestinationRuleResource = Resource<DestinationRuleSpec>;
export type GatewayResource = Resource<GatewaySpec>;
export type HTTPRouteResource = Resource<HTTPRouteSpec>;
export type GRPCRouteResource = Resource<GRPCRouteSpec>;
export type ReferenceGrantResource = Resource<ReferenceGrantSpec>;

/** Everything route translation reads. Pure data; the caller (translate) fills it from a MeshSnapshot. */
export interface RouteInputs {
  readonly virtualServices: readonly VirtualServiceResource[];
  readonly httpRoutes: readonly HTTPRouteResource[];
  readonly grpcRoutes: readonly GRPCRouteResource[];
  readonly istioGateways: readonly IstioGatewayResource[];
  readonly gateways: readonly GatewayResource[];
  readonly referenceGrants: readonly ReferenceGrantResource[];
  readonly destinationRules: readonly DestinationRuleResource[];
  /** Every service in the registry (visibility is filtered here, by `exportTo`). */
  readonly services: readonly ServiceInfo[];
  /** Cluster domain suffix, `cluster.local` by default. */
  readonly domainSuffix: string;
  /** Istio root namespace (`istio-system`): its config applies mesh-wide. */
  readonly rootNamespace: string;
  /** Labels of a namespace, for Gateway `allowedRoutes.namespaces.selector`; absent = no labels known. */
  readonly namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined;
  /** Outbound policy for unknown hosts: `ALLOW_ANY` (default) adds Istio's `allow_any` virtual host, `REGISTRY_ONLY` a 502 `block_all` one. */
  readonly outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
}
