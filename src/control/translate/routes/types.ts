/**
 * The input seam of route translation: the resources routing reads, as the spec views of
 * src/config/views.ts (structural, so the upstream-typed resources are assignable unchanged), and
 * everything else it needs as plain data. Keeping this seam decouples this folder from how the
 * snapshot is assembled.
 */

import type { Resource } from '../../../config/resource.ts';
import type { ServiceInfo } from '../../../registry/types.ts';
import type { DestinationRuleView, GatewayView, GRPCRouteView, HTTPRouteView, IstioGatewayView, ReferenceGrantView, VirtualServiceView } from '../../../config/views.ts';

export type VirtualServiceResource = Resource<VirtualServiceView>;
export type IstioGatewayResource = Resource<IstioGatewayView>;
export type DestinationRuleResource = Resource<DestinationRuleView>;
export type GatewayResource = Resource<GatewayView>;
export type HTTPRouteResource = Resource<HTTPRouteView>;
export type GRPCRouteResource = Resource<GRPCRouteView>;
export type ReferenceGrantResource = Resource<ReferenceGrantView>;

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
