/** Gateway API specs (gateway.networking.k8s.io) as Trellis reads them (see ../views.ts). */
import type { Labels } from './kubernetes.ts';

type Arr<T> = readonly T[];

// ---- gateway.networking.k8s.io ----

/** Gateway API ParentReference. */
export interface ParentRef {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface HTTPHeaderMatch {
  readonly type?: string;
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  readonly path?: { readonly type?: string; readonly value?: string };
  readonly headers?: Arr<HTTPHeaderMatch>;
  readonly queryParams?: Arr<HTTPHeaderMatch>;
  readonly method?: string;
}

export interface GRPCRouteMatch {
  readonly method?: { readonly type?: string; readonly service?: string; readonly method?: string };
  readonly headers?: Arr<HTTPHeaderMatch>;
}

export interface HeaderModifier {
  readonly set?: Arr<{ readonly name: string; readonly value: string }>;
  readonly add?: Arr<{ readonly name: string; readonly value: string }>;
  readonly remove?: Arr<string>;
}

export interface BackendObjectRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
}

export interface PathModifier {
  readonly type?: string;
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

export interface RouteFilter {
  readonly type?: string;
  readonly requestHeaderModifier?: HeaderModifier;
  readonly responseHeaderModifier?: HeaderModifier;
  readonly requestRedirect?: {
    readonly scheme?: string;
    readonly hostname?: string;
    readonly path?: PathModifier;
    readonly port?: number;
    readonly statusCode?: number;
  };
  readonly urlRewrite?: { readonly hostname?: string; readonly path?: PathModifier };
  readonly requestMirror?: {
    readonly backendRef?: BackendObjectRef;
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

export interface BackendRef extends BackendObjectRef {
  readonly weight?: number;
  readonly filters?: Arr<RouteFilter>;
}

/** A rule of any Gateway API route kind; `M` its match type. */
export interface RouteRule<M = unknown> {
  readonly name?: string;
  readonly matches?: Arr<M>;
  readonly filters?: Arr<RouteFilter>;
  readonly backendRefs?: Arr<BackendRef>;
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
  readonly retry?: { readonly codes?: Arr<number>; readonly attempts?: number; readonly backoff?: string };
}

/** Any Gateway API route (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute); `M` its match type. */
export interface RouteView<M = unknown> {
  readonly parentRefs?: Arr<ParentRef>;
  readonly hostnames?: Arr<string>;
  readonly rules?: Arr<RouteRule<M>>;
}

export type HTTPRouteView = RouteView<HTTPRouteMatch>;
export type GRPCRouteView = RouteView<GRPCRouteMatch>;

export interface SecretObjectRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
}

export interface GatewayListener {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: string;
  readonly tls?: { readonly mode?: string; readonly certificateRefs?: Arr<SecretObjectRef> };
  readonly allowedRoutes?: {
    readonly namespaces?: {
      readonly from?: string;
      readonly selector?: {
        readonly matchLabels?: Labels;
        readonly matchExpressions?: Arr<{ readonly key: string; readonly operator: string; readonly values?: Arr<string> }>;
      };
    };
    readonly kinds?: Arr<{ readonly group?: string; readonly kind: string }>;
  };
}

/** Gateway API Gateway (not Istio's Gateway). */
export interface GatewayView {
  readonly gatewayClassName?: string;
  readonly listeners?: Arr<GatewayListener>;
  readonly addresses?: Arr<unknown>;
}

export interface ReferenceGrantView {
  readonly from?: Arr<{ readonly group?: string; readonly kind?: string; readonly namespace?: string }>;
  readonly to?: Arr<{ readonly group?: string; readonly kind?: string; readonly name?: string }>;
}
