/**
 * MeshSnapshot: one immutable, versioned view of the mesh that translation reads — the frozen
 * resource lists by type, the service registry, the mesh settings and a few small indexes (each
 * its own module; the snapshot only holds them). Built from anything that lists resources (a
 * ConfigStore). Rebuilding reuses the previous snapshot's registry and indexes by identity when
 * their input lists are unchanged (stores hand out the same frozen objects for unchanged
 * resources), so an edit to a VirtualService does not rebuild endpoints.
 */
import type { MeshTelemetry } from '../../config/telemetry-providers.ts';
import type { PathNormalizationMode } from '../../config/mesh-config.ts';
import type { Resource, ResourceType } from '../../config/resource.ts';
import type { ExtensionProvider } from '../../config/extension-providers.ts';
import { ResourceTypes } from '../../config/resource.ts';
import type { ServiceRegistry } from '../../registry/types.ts';
import { buildRegistry, RegistryInputTypes } from '../../registry/registry.ts';
import type { DestinationRuleIndex } from './destination-rules.ts';
import { indexDestinationRules } from './destination-rules.ts';
import type { VirtualServiceIndex } from './virtual-services.ts';
import { indexVirtualServices } from './virtual-services.ts';
import type { SidecarIndex } from './sidecars.ts';
import { indexSidecars } from './sidecars.ts';
import type { GatewayIndex, RouteParentIndex } from './gateways.ts';
import { indexGateways, indexRouteParents } from './gateways.ts';
import type { PeerAuthenticationIndex } from './peer-authentications.ts';
import { indexPeerAuthentications } from './peer-authentications.ts';

/** Mesh-wide settings (Istio MeshConfig subset). */
export interface MeshSettings {
  /** Namespace holding mesh-wide defaults (Sidecar, DestinationRule); Istio's `istio-system`. */
  readonly rootNamespace: string;
  /** SPIFFE trust domain. */
  readonly trustDomain: string;
  /** Kubernetes DNS suffix. */
  readonly domainSuffix: string;
  /** What sidecars do with traffic to unknown destinations. */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Give Services without a clusterIP a VIP (src/registry/vip.ts); `trellis up --capture transparent` sets it. */
  readonly autoAllocateVips?: boolean;
  /** Istio's enableAutoMtls: clients use ISTIO_MUTUAL to endpoints with a sidecar unless a DestinationRule says otherwise (default true). */
  readonly enableAutoMtls?: boolean;
  /** A 403 from authorization names the AuthorizationPolicy (body and x-trellis-policy); default true. */
  readonly authorizationDenialNamesPolicy?: boolean;
  /** MeshConfig extensionProviders of the ext_authz kinds (AuthorizationPolicy CUSTOM). */
  readonly extAuthzProviders?: readonly ExtensionProvider[];
  /** MeshConfig's telemetry: extension providers, defaultProviders, tracing and access log defaults. */
  readonly telemetry?: MeshTelemetry;
  /** MeshConfig.pathNormalization: how proxies normalize request paths (HCM normalize_path / merge_slashes / escaped slashes). */
  readonly pathNormalization: PathNormalizationMode;
}

export const DefaultMeshSettings: MeshSettings = Object.freeze({
  rootNamespace: 'istio-system',
  trustDomain: 'cluster.local',
  domainSuffix: 'cluster.local',
  outboundTrafficPolicy: 'ALLOW_ANY',
  pathNormalization: 'BASE',
});

/** Anything that lists resources by type; a ConfigStore qualifies (`types` and `revision` are used when present). */
export interface SnapshotSource {
  list(type: ResourceType, namespace?: string): readonly Resource[];
  types?(): readonly ResourceType[];
  readonly revision?: number;
}

/** The JWKS (JSON text) held for a RequestAuthentication issuer / jwksUri, undefined when none was fetched. */
export type JwksLookup = (issuer: string, jwksUri: string | undefined) => string | undefined;

export interface SnapshotOptions {
  readonly mesh?: Partial<MeshSettings>;
  /** The mesh CA's trust bundle (PEM roots, signing root first); empty without a CA. */
  readonly trustBundle?: readonly string[];
  /** Key sets fetched by the control plane's JWKS resolver (none by default). */
  readonly jwks?: JwksLookup;
}

/** The immutable input of translation. */
export interface MeshSnapshot {
  /** Increases by one per build from a previous snapshot; starts at 1. */
  readonly version: number;
  /** The source's revision when built (0 when the source has none). */
  readonly revision: number;
  readonly mesh: MeshSettings;
  readonly registry: ServiceRegistry;
  /** All resources of a type (namespace/name order), optionally in one namespace. Frozen. */
  list(type: ResourceType, namespace?: string): readonly Resource[];
  /** One resource. */
  get(type: ResourceType, namespace: string, name: string): Resource | undefined;
  readonly virtualServices: VirtualServiceIndex;
  readonly destinationRules: DestinationRuleIndex;
  readonly sidecars: SidecarIndex;
  readonly gateways: GatewayIndex;
  readonly routeParents: RouteParentIndex;
  readonly peerAuthentications: PeerAuthenticationIndex;
  /** The mesh CA's trust bundle (PEM roots), served to proxies as the `ROOTCA` secret; empty without a CA. */
  readonly trustBundle: readonly string[];
  /** Key sets the control plane fetched for RequestAuthentications without inline `jwks`. */
  readonly jwks: JwksLookup;
}

const knownTypes: readonly ResourceType[] = [...new Set<string>([...Object.values(ResourceTypes), ...RegistryInputTypes])];

function sameList(a: readonly Resource[] | undefined, b: readonly Resource[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Internals {
  readonly lists: ReadonlyMap<ResourceType, readonly Resource[]>;
}
const internals = new WeakMap<MeshSnapshot, Internals>();

/** Builds a snapshot; with `previous`, reuses whatever its unchanged inputs allow. */
export function buildSnapshot(source: SnapshotSource, opts: SnapshotOptions = {}, previous?: MeshSnapshot): MeshSnapshot {
  const types = [...new Set([...knownTypes, ...(source.types?.() ?? [])])];
  const lists = new Map<ResourceType, readonly Resource[]>();
  for (const t of types) {
    const l = source.list(t);
    if (l.length > 0) lists.set(t, Object.isFrozen(l) ? l : Object.freeze([...l]));
  }
  const mesh: MeshSettings = Object.freeze({ ...DefaultMeshSettings, ...(opts.mesh ?? {}) });
  const prev = previous !== undefined ? internals.get(previous) : undefined;
  const unchanged = (ts: readonly ResourceType[]) =>
    prev !== undefined && previous!.mesh.domainSuffix === mesh.domainSuffix && previous!.mesh.rootNamespace === mesh.rootNamespace &&
    previous!.mesh.autoAllocateVips === mesh.autoAllocateVips &&
    ts.every((t) => sameList(prev.lists.get(t) ?? [], lists.get(t) ?? []));
  const list = (t: ResourceType) => lists.get(t) ?? [];

  let registry: ServiceRegistry;
  if (unchanged(RegistryInputTypes)) registry = previous!.registry;
  else {
    registry = buildRegistry({ list: (t, ns) => (ns === undefined ? list(t) : list(t).filter((r) => r.metadata.namespace === ns)) }, { domainSuffix: mesh.domainSuffix, autoAllocateVips: mesh.autoAllocateVips });
    if (previous !== undefined && previous.registry.version === registry.version && previous.registry.domainSuffix === registry.domainSuffix) registry = previous.registry;
  }
  const sameRegistry = previous !== undefined && registry === previous.registry;
  const reuse = <K extends keyof MeshSnapshot>(key: K, ts: readonly ResourceType[], needsRegistry: boolean, make: () => MeshSnapshot[K]): MeshSnapshot[K] =>
    previous !== undefined && unchanged(ts) && (!needsRegistry || sameRegistry) ? previous[key] : make();

  const snapshot: MeshSnapshot = Object.freeze({
    version: (previous?.version ?? 0) + 1,
    revision: source.revision ?? 0,
    mesh,
    registry,
    jwks: opts.jwks ?? (() => undefined),
    list: (t: ResourceType, ns?: string) => (ns === undefined ? list(t) : list(t).filter((r) => r.metadata.namespace === ns)),
    get: (t: ResourceType, ns: string, name: string) => list(t).find((r) => r.metadata.namespace === ns && r.metadata.name === name),
    virtualServices: reuse('virtualServices', [ResourceTypes.VirtualService], true, () => indexVirtualServices(list(ResourceTypes.VirtualService), registry)),
    destinationRules: reuse('destinationRules', [ResourceTypes.DestinationRule], true, () =>
      indexDestinationRules(list(ResourceTypes.DestinationRule), registry, mesh.rootNamespace)),
    sidecars: reuse('sidecars', [ResourceTypes.Sidecar], false, () => indexSidecars(list(ResourceTypes.Sidecar), mesh.rootNamespace)),
    gateways: reuse('gateways', [ResourceTypes.IstioGateway, ResourceTypes.Gateway], false, () =>
      indexGateways(list(ResourceTypes.IstioGateway), list(ResourceTypes.Gateway))),
    peerAuthentications: reuse('peerAuthentications', [ResourceTypes.PeerAuthentication], false, () =>
      indexPeerAuthentications(list(ResourceTypes.PeerAuthentication), mesh.rootNamespace)),
    trustBundle: Object.freeze([...(opts.trustBundle ?? previous?.trustBundle ?? [])]),
    routeParents: reuse('routeParents', [ResourceTypes.HTTPRoute, ResourceTypes.GRPCRoute, ResourceTypes.TCPRoute, ResourceTypes.TLSRoute], false, () =>
      indexRouteParents(list)),
  });
  internals.set(snapshot, { lists });
  return snapshot;
}
