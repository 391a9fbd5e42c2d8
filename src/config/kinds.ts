/**
 * The typed spec of every resource kind Trellis understands, named once so analyzers and the
 * translation layer import one vocabulary. Specs come from the upstream typed models
 * (kubernetes-models, @kubernetes-models/istio, @kubernetes-models/gateway-api); where no model
 * exists or the model lags the API version we serve (Telemetry v1, Trellis's own Workload,
 * EndpointSlice's spec-less body) the type is written here, following the upstream reference.
 * Istio `networking.istio.io/v1` uses the v1beta1 model: the two versions share one schema.
 * Types describe resources after loading, i.e. after defaults were applied (see src/config/defaults.ts).
 */
import type { Resource } from './resource.ts';
import type { IVirtualService } from '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService';
import type { IDestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule';
import type { IGateway as IIstioGateway } from '@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway';
import type { IServiceEntry } from '@kubernetes-models/istio/networking.istio.io/v1beta1/ServiceEntry';
import type { IWorkloadEntry } from '@kubernetes-models/istio/networking.istio.io/v1beta1/WorkloadEntry';
import type { ISidecar } from '@kubernetes-models/istio/networking.istio.io/v1beta1/Sidecar';
import type { IPeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1beta1/PeerAuthentication';
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import type { IGatewayClass } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass';
import type { IGateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import type { IGRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/GRPCRoute';
import type { IReferenceGrant } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1/ReferenceGrant';
import type { ITCPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRoute';
import type { ITLSRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TLSRoute';
import type { INamespace, IService } from 'kubernetes-models/v1';
import type { IEndpoint, IEndpointPort } from 'kubernetes-models/discovery.k8s.io/v1';

// ---- networking.istio.io ----
/** networking.istio.io VirtualService spec. */
export type VirtualServiceSpec = NonNullable<IVirtualService['spec']>;
/** networking.istio.io DestinationRule spec. */
export type DestinationRuleSpec = NonNullable<IDestinationRule['spec']>;
/** networking.istio.io Gateway spec (not the Gateway API's Gateway). */
export type IstioGatewaySpec = NonNullable<IIstioGateway['spec']>;
/** networking.istio.io ServiceEntry spec. */
export type ServiceEntrySpec = NonNullable<IServiceEntry['spec']>;
/** networking.istio.io WorkloadEntry spec. */
export type WorkloadEntrySpec = NonNullable<IWorkloadEntry['spec']>;
/** networking.istio.io Sidecar spec. */
export type SidecarSpec = NonNullable<ISidecar['spec']>;

// ---- security.istio.io ----
/** security.istio.io PeerAuthentication spec. */
export type PeerAuthenticationSpec = NonNullable<IPeerAuthentication['spec']>;
/** security.istio.io RequestAuthentication spec. */
export type RequestAuthenticationSpec = NonNullable<IRequestAuthentication['spec']>;
/** security.istio.io AuthorizationPolicy spec. */
export type AuthorizationPolicySpec = NonNullable<IAuthorizationPolicy['spec']>;

// ---- telemetry.istio.io/v1 (written here: the model package only has an older v1alpha1) ----
/** A policy target reference (Istio `PolicyTargetReference`). */
export interface PolicyTargetReference {
  readonly group?: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}
/** Istio `ProviderRef`: the name of an extension provider from MeshConfig. */
export interface TelemetryProviderRef {
  readonly name: string;
}
/** Which side of the traffic a telemetry override applies to. */
export type WorkloadMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';
/** A custom tracing tag: a literal, an environment variable or a request header. */
export interface TelemetryCustomTag {
  readonly literal?: { readonly value: string };
  readonly environment?: { readonly name: string; readonly defaultValue?: string };
  readonly header?: { readonly name: string; readonly defaultValue?: string };
}
/** Tracing settings. */
export interface TelemetryTracing {
  readonly match?: { readonly mode?: WorkloadMode };
  readonly providers?: readonly TelemetryProviderRef[];
  /** Percentage 0..100. */
  readonly randomSamplingPercentage?: number;
  readonly disableSpanReporting?: boolean;
  readonly customTags?: Readonly<Record<string, TelemetryCustomTag>>;
  readonly useRequestIdForTraceSampling?: boolean;
}
/** Istio standard metric names selectable by a metric override. */
export type TelemetryMetricName =
  | 'ALL_METRICS' | 'REQUEST_COUNT' | 'REQUEST_DURATION' | 'REQUEST_SIZE' | 'RESPONSE_SIZE'
  | 'TCP_OPENED_CONNECTIONS' | 'TCP_CLOSED_CONNECTIONS' | 'TCP_SENT_BYTES' | 'TCP_RECEIVED_BYTES'
  | 'GRPC_REQUEST_MESSAGES' | 'GRPC_RESPONSE_MESSAGES';
/** One metric override: disable a metric or change its tags. */
export interface TelemetryMetricOverride {
  readonly match?: {
    readonly metric?: TelemetryMetricName;
    readonly customMetric?: string;
    readonly mode?: WorkloadMode;
  };
  readonly disabled?: boolean;
  readonly tagOverrides?: Readonly<Record<string, { readonly operation?: 'UPSERT' | 'REMOVE'; readonly value?: string }>>;
}
/** Metrics settings. */
export interface TelemetryMetrics {
  readonly providers?: readonly TelemetryProviderRef[];
  readonly overrides?: readonly TelemetryMetricOverride[];
  /** Protobuf duration ("15s"). */
  readonly reportingInterval?: string;
}
/** Access logging settings. */
export interface TelemetryAccessLogging {
  readonly match?: { readonly mode?: WorkloadMode };
  readonly providers?: readonly TelemetryProviderRef[];
  readonly disabled?: boolean;
  readonly filter?: { readonly expression: string };
}
/** telemetry.istio.io/v1 Telemetry spec. */
export interface TelemetrySpec {
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly targetRef?: PolicyTargetReference;
  readonly targetRefs?: readonly PolicyTargetReference[];
  readonly tracing?: readonly TelemetryTracing[];
  readonly metrics?: readonly TelemetryMetrics[];
  readonly accessLogging?: readonly TelemetryAccessLogging[];
}

// ---- gateway.networking.k8s.io ----
/** Gateway API GatewayClass spec. */
export type GatewayClassSpec = NonNullable<IGatewayClass['spec']>;
/** Gateway API Gateway spec. */
export type GatewaySpec = NonNullable<IGateway['spec']>;
/** Gateway API HTTPRoute spec. */
export type HTTPRouteSpec = NonNullable<IHTTPRoute['spec']>;
/** Gateway API GRPCRoute spec (v1 shares v1alpha2's shape). */
export type GRPCRouteSpec = NonNullable<IGRPCRoute['spec']>;
/** Gateway API ReferenceGrant spec. */
export type ReferenceGrantSpec = NonNullable<IReferenceGrant['spec']>;
/** Gateway API TCPRoute spec (v1alpha2). */
export type TCPRouteSpec = NonNullable<ITCPRoute['spec']>;
/** Gateway API TLSRoute spec (v1alpha2). */
export type TLSRouteSpec = NonNullable<ITLSRoute['spec']>;

// ---- Kubernetes core ----
/** Namespace spec (finalizers only; labels are what matter). */
export type NamespaceSpec = NonNullable<INamespace['spec']>;
/** Service spec (ports have protocol and targetPort defaulted). */
export type ServiceSpec = NonNullable<IService['spec']>;
/** Secret has no spec: see `secretBody`. */
export type SecretSpec = Readonly<Record<string, never>>;
/** ConfigMap has no spec: see `configMapBody`. */
export type ConfigMapSpec = Readonly<Record<string, never>>;
/** EndpointSlice has no spec: see `endpointSliceBody`. */
export type EndpointSliceSpec = Readonly<Record<string, never>>;

/** Secret top-level fields (kept in `Resource.body`). `data` values are base64. */
export interface SecretBody {
  readonly type?: string;
  readonly data?: Readonly<Record<string, string>>;
  readonly stringData?: Readonly<Record<string, string>>;
  readonly immutable?: boolean;
}
/** ConfigMap top-level fields (kept in `Resource.body`). */
export interface ConfigMapBody {
  readonly data?: Readonly<Record<string, string>>;
  readonly binaryData?: Readonly<Record<string, string>>;
  readonly immutable?: boolean;
}
/** EndpointSlice top-level fields (kept in `Resource.body`). */
export interface EndpointSliceBody {
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly IEndpoint[];
  readonly ports?: readonly IEndpointPort[];
}

// ---- trellis.dev/v1alpha1 ----
/** Application protocol of a Workload port. */
export type WorkloadPortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';
/** One port a local Workload listens on. */
export interface WorkloadPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol?: WorkloadPortProtocol;
}
/** A workload `trellis up` runs locally (defaults applied: replicas 1, serviceAccount "default", captureMode explicit, env {}, ports []). */
export interface WorkloadSpec {
  readonly replicas: number;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly ports: readonly WorkloadPort[];
  readonly serviceAccount: string;
  readonly captureMode: 'explicit' | 'transparent';
  readonly workingDir?: string;
  readonly readinessPath?: string;
}

// ---- Resource aliases ----
export type VirtualServiceResource = Resource<VirtualServiceSpec>;
export type DestinationRuleResource = Resource<DestinationRuleSpec>;
export type IstioGatewayResource = Resource<IstioGatewaySpec>;
export type ServiceEntryResource = Resource<ServiceEntrySpec>;
export type WorkloadEntryResource = Resource<WorkloadEntrySpec>;
export type SidecarResource = Resource<SidecarSpec>;
export type PeerAuthenticationResource = Resource<PeerAuthenticationSpec>;
export type RequestAuthenticationResource = Resource<RequestAuthenticationSpec>;
export type AuthorizationPolicyResource = Resource<AuthorizationPolicySpec>;
export type TelemetryResource = Resource<TelemetrySpec>;
export type GatewayClassResource = Resource<GatewayClassSpec>;
export type GatewayResource = Resource<GatewaySpec>;
export type HTTPRouteResource = Resource<HTTPRouteSpec>;
export type GRPCRouteResource = Resource<GRPCRouteSpec>;
export type ReferenceGrantResource = Resource<ReferenceGrantSpec>;
export type TCPRouteResource = Resource<TCPRouteSpec>;
export type TLSRouteResource = Resource<TLSRouteSpec>;
export type NamespaceResource = Resource<NamespaceSpec>;
export type ServiceResource = Resource<ServiceSpec>;
export type SecretResource = Resource<SecretSpec>;
export type ConfigMapResource = Resource<ConfigMapSpec>;
export type EndpointSliceResource = Resource<EndpointSliceSpec>;
export type WorkloadResource = Resource<WorkloadSpec>;

/** The Secret's top-level fields. */
export function secretBody(r: SecretResource): SecretBody {
  return (r.body ?? {}) as SecretBody;
}
/** The ConfigMap's top-level fields. */
export function configMapBody(r: ConfigMapResource): ConfigMapBody {
  return (r.body ?? {}) as ConfigMapBody;
}
/** The EndpointSlice's top-level fields (schema-validated at load, so addressType and endpoints are present). */
export function endpointSliceBody(r: EndpointSliceResource): EndpointSliceBody {
  return (r.body ?? { addressType: 'IPv4', endpoints: [] }) as unknown as EndpointSliceBody;
}
