/**
 * Narrow structural views of the Istio specs the snapshot indexes and translation read. The
 * upstream model types (src/config/kinds.ts) are generated unions that are awkward to narrow;
 * these name just the fields we use, as optional, so reading them never crashes on a field the
 * loader defaulted differently. Each view is a subset of the upstream schema.
 */
import type { Resource } from '../../config/resource.ts';


export interface PortSelector { readonly number?: number }

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
  readonly distribute?: readonly { readonly from?: string; readonly to?: Readonly<Record<string, number>> }[];
  readonly failover?: readonly { readonly from?: string; readonly to?: string }[];
  readonly failoverPriority?: readonly string[];
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
  readonly subjectAltNames?: readonly string[];
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
  readonly portLevelSettings?: readonly PortTrafficPolicy[];
}

export interface Subset {
  readonly name?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleView {
  readonly host?: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: readonly Subset[];
  readonly exportTo?: readonly string[];
  readonly workloadSelector?: { readonly matchLabels?: Readonly<Record<string, string>> };
}

export interface VirtualServiceView {
  readonly hosts?: readonly string[];
  readonly gateways?: readonly string[];
  readonly exportTo?: readonly string[];
  readonly http?: readonly unknown[];
  readonly tcp?: readonly TcpRouteView[];
  readonly tls?: readonly TlsRouteView[];
}

export interface RouteDestinationView {
  readonly destination?: { readonly host?: string; readonly subset?: string; readonly port?: PortSelector };
  readonly weight?: number;
}

export interface L4MatchView {
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}

export interface TcpRouteView {
  readonly match?: readonly L4MatchView[];
  readonly route?: readonly RouteDestinationView[];
}

export interface TlsRouteView {
  readonly match?: readonly (L4MatchView & { readonly sniHosts?: readonly string[] })[];
  readonly route?: readonly RouteDestinationView[];
}

export interface ServerTlsView {
  readonly httpsRedirect?: boolean;
  readonly mode?: string;
  readonly serverCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly subjectAltNames?: readonly string[];
  readonly minProtocolVersion?: string;
  readonly maxProtocolVersion?: string;
  readonly cipherSuites?: readonly string[];
}

export interface GatewayServerView {
  readonly port?: { readonly number?: number; readonly protocol?: string; readonly name?: string; readonly targetPort?: number };
  readonly bind?: string;
  readonly hosts?: readonly string[];
  readonly tls?: ServerTlsView;
  readonly name?: string;
}

export interface IstioGatewayView {
  readonly selector?: Readonly<Record<string, string>>;
  readonly servers?: readonly GatewayServerView[];
}

export interface SidecarEgressView {
  readonly port?: { readonly number?: number; readonly protocol?: string; readonly name?: string };
  readonly bind?: string;
  readonly captureMode?: string;
  readonly hosts?: readonly string[];
}

export interface SidecarIngressView {
  readonly port?: { readonly number?: number; readonly protocol?: string; readonly name?: string };
  readonly bind?: string;
  readonly defaultEndpoint?: string;
}

export interface SidecarView {
  readonly workloadSelector?: { readonly labels?: Readonly<Record<string, string>> };
  readonly ingress?: readonly SidecarIngressView[];
  readonly egress?: readonly SidecarEgressView[];
  readonly outboundTrafficPolicy?: { readonly mode?: string; readonly egressProxy?: unknown };
}

/** Gateway API parentRef. */
export interface ParentRefView {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface GatewayApiListenerView {
  readonly name?: string;
  readonly hostname?: string;
  readonly port?: number;
  readonly protocol?: string;
  readonly tls?: {
    readonly mode?: string;
    readonly certificateRefs?: readonly { readonly group?: string; readonly kind?: string; readonly name?: string; readonly namespace?: string }[];
  };
  readonly allowedRoutes?: {
    readonly namespaces?: { readonly from?: string; readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> } };
    readonly kinds?: readonly { readonly group?: string; readonly kind?: string }[];
  };
}

export interface GatewayApiGatewayView {
  readonly gatewayClassName?: string;
  readonly listeners?: readonly GatewayApiListenerView[];
  readonly addresses?: readonly unknown[];
}

export interface GatewayApiRouteView {
  readonly parentRefs?: readonly ParentRefView[];
  readonly hostnames?: readonly string[];
  readonly rules?: readonly unknown[];
}

/** The spec of a resource as a narrow view (never undefined). */
export function view<T>(r: Resource): T {
  const s = r.spec;
  return (s !== null && typeof s === 'object' ? s : {}) as T;
}
