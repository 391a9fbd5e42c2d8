/** Istio specs (networking, security, telemetry.istio.io) as Trellis reads them (see ../views.ts). */
import type { Labels } from './kubernetes.ts';

type Arr<T> = readonly T[];

// ---- networking.istio.io: shared parts ----

/** Istio StringMatch (one of exact / prefix / regex). */
export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface PortSelector {
  readonly number?: number;
}

export interface Destination {
  readonly host?: string;
  readonly subset?: string;
  readonly port?: PortSelector;
}

export interface HeaderOperations {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: Arr<string>;
}

export interface RouteHeaders {
  readonly request?: HeaderOperations;
  readonly response?: HeaderOperations;
}

export interface Percent {
  readonly value?: number;
}

// ---- VirtualService ----

export interface HTTPMatchRequest {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly scheme?: StringMatch;
  readonly method?: StringMatch;
  readonly authority?: StringMatch;
  readonly headers?: Readonly<Record<string, StringMatch>>;
  readonly withoutHeaders?: Readonly<Record<string, StringMatch>>;
  readonly queryParams?: Readonly<Record<string, StringMatch>>;
  readonly port?: number;
  readonly sourceLabels?: Labels;
  readonly sourceNamespace?: string;
  readonly gateways?: Arr<string>;
  readonly ignoreUriCase?: boolean;
  readonly statPrefix?: string;
  /** Conditions are compared whatever their name (shadowing). */
  readonly [condition: string]: unknown;
}

export interface HTTPRouteDestination {
  readonly destination?: Destination;
  readonly weight?: number;
  readonly headers?: RouteHeaders;
}

/** One `http` route of a VirtualService (Istio's HTTPRoute). */
export interface HTTPRoute {
  readonly name?: string;
  readonly match?: Arr<HTTPMatchRequest>;
  readonly route?: Arr<HTTPRouteDestination>;
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
    readonly delay?: { readonly fixedDelay?: string; readonly percentage?: Percent; readonly percent?: number };
    readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly percentage?: Percent };
  };
  readonly mirror?: Destination;
  readonly mirrorPercentage?: Percent;
  readonly mirrorPercent?: number;
  readonly mirrors?: Arr<{ readonly destination?: Destination; readonly percentage?: Percent }>;
  readonly corsPolicy?: {
    readonly allowOrigins?: Arr<StringMatch>;
    readonly allowOrigin?: Arr<string>;
    readonly allowMethods?: Arr<string>;
    readonly allowHeaders?: Arr<string>;
    readonly exposeHeaders?: Arr<string>;
    readonly maxAge?: string;
    readonly allowCredentials?: boolean;
  };
  readonly headers?: RouteHeaders;
}

/** A TCP / TLS route destination. */
export interface RouteDestination {
  readonly destination?: Destination;
  readonly weight?: number;
}

/** An L4 (tcp / tls) match. */
export interface L4Match {
  readonly destinationSubnets?: Arr<string>;
  readonly port?: number;
  readonly sourceLabels?: Labels;
  readonly gateways?: Arr<string>;
  readonly sourceNamespace?: string;
  readonly sniHosts?: Arr<string>;
  /** Conditions are compared whatever their name (shadowing). */
  readonly [condition: string]: unknown;
}

/** A `tcp` or `tls` route of a VirtualService. */
export interface L4Route {
  readonly match?: Arr<L4Match>;
  readonly route?: Arr<RouteDestination>;
}

export interface VirtualServiceView {
  readonly hosts?: Arr<string>;
  readonly gateways?: Arr<string>;
  readonly exportTo?: Arr<string>;
  readonly http?: Arr<HTTPRoute>;
  readonly tcp?: Arr<L4Route>;
  readonly tls?: Arr<L4Route>;
}

// ---- DestinationRule ----

export interface LoadBalancerSettings {
  readonly simple?: string;
  readonly consistentHash?: {
    readonly httpHeaderName?: string;
    readonly httpCookie?: { readonly name?: string; readonly path?: string; readonly ttl?: string };
    readonly useSourceIp?: boolean;
    readonly httpQueryParameterName?: string;
    readonly ringHash?: { readonly minimumRingSize?: number };
    readonly maglev?: { readonly tableSize?: number };
    readonly minimumRingSize?: number;
  };
  readonly localityLbSetting?: LocalityLbSetting;
  readonly warmupDurationSecs?: string;
}

export interface LocalityLbSetting {
  readonly enabled?: boolean;
  readonly distribute?: Arr<{ readonly from?: string; readonly to?: Readonly<Record<string, number>> }>;
  readonly failover?: Arr<{ readonly from?: string; readonly to?: string }>;
  readonly failoverPriority?: Arr<string>;
}

export interface ConnectionPoolSettings {
  readonly tcp?: {
    readonly maxConnections?: number;
    readonly connectTimeout?: string;
    readonly tcpKeepalive?: { readonly probes?: number; readonly time?: string; readonly interval?: string };
    readonly maxConnectionDuration?: string;
    readonly idleTimeout?: string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
    readonly h2UpgradePolicy?: string;
    readonly useClientProtocol?: boolean;
    readonly maxConcurrentStreams?: number;
  };
}

export interface OutlierDetection {
  readonly consecutiveErrors?: number;
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly splitExternalLocalOriginErrors?: boolean;
  readonly consecutiveLocalOriginFailures?: number;
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

export interface ClientTlsSettings {
  readonly mode?: string;
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly subjectAltNames?: Arr<string>;
  readonly sni?: string;
  readonly insecureSkipVerify?: boolean;
}

export interface PortTrafficPolicy {
  readonly port?: PortSelector;
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
}

export interface TrafficPolicy extends Omit<PortTrafficPolicy, 'port'> {
  readonly portLevelSettings?: Arr<PortTrafficPolicy>;
}

export interface Subset {
  readonly name?: string;
  readonly labels?: Labels;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleView {
  readonly host?: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: Arr<Subset>;
  readonly exportTo?: Arr<string>;
  readonly workloadSelector?: { readonly matchLabels?: Labels };
}

// ---- Istio Gateway ----

export interface ServerTlsSettings {
  readonly httpsRedirect?: boolean;
  readonly mode?: string;
  readonly serverCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly credentialNames?: Arr<string>;
  readonly subjectAltNames?: Arr<string>;
  readonly minProtocolVersion?: string;
  readonly maxProtocolVersion?: string;
  readonly cipherSuites?: Arr<string>;
}

/** One server of an Istio Gateway. */
export interface GatewayServer {
  readonly port?: { readonly number?: number; readonly protocol?: string; readonly name?: string; readonly targetPort?: number };
  readonly bind?: string;
  readonly hosts?: Arr<string>;
  readonly tls?: ServerTlsSettings;
  readonly name?: string;
}

export interface IstioGatewayView {
  readonly selector?: Labels;
  readonly servers?: Arr<GatewayServer>;
}

// ---- Sidecar, ServiceEntry, WorkloadEntry ----

export interface SidecarEgress {
  readonly port?: { readonly number?: number; readonly protocol?: string; readonly name?: string };
  readonly bind?: string;
  readonly captureMode?: string;
  readonly hosts?: Arr<string>;
}

export interface SidecarIngress {
  readonly port?: { readonly number?: number; readonly protocol?: string; readonly name?: string };
  readonly bind?: string;
  readonly defaultEndpoint?: string;
}

export interface SidecarView {
  readonly workloadSelector?: { readonly labels?: Labels };
  readonly ingress?: Arr<SidecarIngress>;
  readonly egress?: Arr<SidecarEgress>;
  readonly outboundTrafficPolicy?: { readonly mode?: string; readonly egressProxy?: unknown };
}

export interface ServiceEntryView {
  readonly hosts?: Arr<string>;
  readonly addresses?: Arr<string>;
  readonly ports?: Arr<{ readonly number?: number; readonly name?: string; readonly protocol?: string; readonly targetPort?: number }>;
  readonly location?: string;
  readonly resolution?: string;
  readonly endpoints?: Arr<WorkloadEntryView>;
  readonly workloadSelector?: { readonly labels?: Labels };
  readonly exportTo?: Arr<string>;
  readonly subjectAltNames?: Arr<string>;
}

/** A WorkloadEntry's spec, and a ServiceEntry's inline endpoint. */
export interface WorkloadEntryView {
  readonly address?: string;
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Labels;
  readonly network?: string;
  readonly locality?: string;
  readonly weight?: number;
  readonly serviceAccount?: string;
}

// ---- security.istio.io ----

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
  readonly jwtRules?: Arr<JWTRule>;
}

export interface AuthorizationPolicyView {
  readonly selector?: { readonly matchLabels?: Labels };
  readonly rules?: Arr<{
    readonly from?: Arr<{ readonly source?: { readonly namespaces?: Arr<string>; readonly notNamespaces?: Arr<string> } }>;
    readonly when?: Arr<{ readonly key?: string }>;
  }>;
}

// ---- telemetry.istio.io ----

export interface TelemetryView {
  readonly tracing?: Arr<{ readonly providers?: Arr<{ readonly name?: string }> }>;
}

/** The selecting fields every workload policy shares. */
export interface SelectorPolicyView {
  readonly selector?: { readonly matchLabels?: Labels };
  readonly workloadSelector?: { readonly labels?: Labels };
  readonly targetRef?: unknown;
  readonly targetRefs?: Arr<unknown>;
}
