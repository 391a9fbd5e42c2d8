/**
 * The snapshot package's public face: MeshSnapshot, its builder, the change-impact test and the
 * index types. Import from here rather than from the index modules.
 */
export type { MeshSettings, MeshSnapshot, SnapshotOptions, SnapshotSource } from './snapshot.ts';
export { buildSnapshot, DefaultMeshSettings } from './snapshot.ts';
export { affectsProxy } from './affects.ts';
export type { DestinationRuleIndex, IndexedDestinationRule } from './destination-rules.ts';
export type { VirtualServiceIndex, IndexedVirtualService } from './virtual-services.ts';
export { MeshGateway, qualifyGateway } from './virtual-services.ts';
export type { SidecarIndex } from './sidecars.ts';
export type { GatewayIndex, RouteParentIndex, AttachedRoute } from './gateways.ts';
export { GatewayNameLabel } from './gateways.ts';
export { exportedTo, hostMatches, hostsIntersect } from './visibility.ts';
