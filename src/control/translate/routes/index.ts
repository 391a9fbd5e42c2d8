/**
 * Route translation (HTTP routing half of translate): Istio VirtualServices and Gateway API
 * HTTPRoute / GRPCRoute (Gateway-attached and GAMMA) to Envoy RouteConfiguration JSON, plus
 * Gateway API route and listener status. Callers build a `RouteInputs` from the MeshSnapshot and
 * call one builder per route configuration name; everything here is pure.
 */

export type {
  RouteInputs,
  VirtualServiceResource,
  IstioGatewayResource,
  DestinationRuleResource,
  GatewayResource,
  HTTPRouteResource,
  GRPCRouteResource,
  ReferenceGrantResource,
} from './types.ts';
export { buildSidecarOutboundRoute, buildSidecarServiceRoute, defaultRoute, httpServicesOnPort } from './sidecar.ts';
export { buildIstioGatewayRoute, buildGatewayApiRoute, type IstioServerRef } from './gateway.ts';
export {
  computeRouteStatus,
  computeListenerStatus,
  DEFAULT_CONTROLLER_NAME,
  IMPLEMENTED_ROUTE_KINDS,
  type RouteParentStatus,
  type RouteCondition,
  type ListenerStatus,
} from './status.ts';
export { INVALID_BACKEND_CLUSTER } from './gateway-api-route.ts';
export { attachParent, resolveBackend, allRoutes, type AnyRoute, type ParentAttachment } from './attachment.ts';
export { ROUTE_EXTENSION_PROTOS } from './envoy.ts';
