/**
 * How far the semantic analysis of one resource reaches, for the incremental analysis
 * (incremental-analysis.ts): the *facets* its diagnostics may depend on (`reads`) and the facets
 * through which it may bear on other resources' diagnostics (`provides`). A change to a resource
 * re-analyses the resources that read a facet it provides (old or new version); their analysis
 * input is every resource providing a facet they read. Coarse on purpose, erring towards more:
 * a facet read too many costs time, one missed would leave a stale diagnostic, so the model is
 * held to the full analysis by a test that edits real corpora at random
 * (incremental-analysis.test.ts).
 *
 * Facets:
 * - `ns:N`: anything in namespace N (but routes and DestinationRules, read only through their
 *   hosts and labels). Every resource reads its own namespace, the root namespace
 *   (mesh-wide policies and the mesh config live there) and cluster-scoped resources (`ns:`), plus
 *   every namespace its spec names: `namespace` fields (Gateway API refs, delegates),
 *   `namespaces`/`notNamespaces` (authorization sources), `ns/name` gateway and host references,
 *   and the namespace label of Kubernetes service hosts (`name.ns[.svc...]`).
 * - hosts, keyed by their first label (`reviews` for `reviews`, `reviews.ns` and the FQDN alike,
 *   so no resolution rule can split what belongs together). A host is *declared* by a Service (its
 *   name) or a ServiceEntry (`host:L`), *claimed* by a resource of some type (VirtualService and
 *   ServiceEntry `hosts`, a DestinationRule's `host`, Gateway API hostnames: `claim:TYPE:L`, read
 *   by the other claims of that type, for conflicts and shadowing) and *referenced* by route
 *   destinations, Hostname backends and a DestinationRule's host (reading the declarations and
 *   the DestinationRules of that host, which read the references back: `ref:L`). Wildcards meet through `host:*wild` / `claim:TYPE:*wild`,
 *   read by every reader of a concrete host; a wildcard reference reads every declaration
 *   (`host:*all`) and every DestinationRule (`claim:DR:*all`).
 * - `labels`: the workload label sets (Services, Workloads, WorkloadEntries, ServiceEntries,
 *   DestinationRule subsets, pods of any kind), read by every workload selector: a selector that
 *   matches nothing is reported only when the input knows some workload at all.
 * - `secrets` and `istio-gateways`: an Istio Gateway's selector picks gateway workloads in any
 *   namespace, whose Secrets it reads, and two Gateways served by one workload can conflict.
 * - `*`: everything (a type the model does not know, an authorization namespace pattern).
 */
import type { Resource, ResourceType } from '../config/resource.ts';
import { ResourceTypes as T } from '../config/resource.ts';

/** What one resource's analysis reads and what it provides to others'. */
export interface Reach {
  readonly reads: readonly string[];
  readonly provides: readonly string[];
}

/** Facet read by a resource whose analysis may read anything. */
export const Everything = '*';

/** Types no analysis reads and that have no findings of their own. */
const Unanalysed: ReadonlySet<ResourceType> = new Set([T.EndpointSlice]);

/**
 * Types nothing reads through their namespace: other resources' findings depend on them only
 * through the hosts they claim (VirtualService conflicts, DestinationRule subsets) or the labels
 * they define. A change to one then re-analyses what shares its hosts, not its whole namespace.
 */
const ReadOnlyThroughHosts: ReadonlySet<ResourceType> = new Set([T.VirtualService, T.DestinationRule, T.HTTPRoute, T.GRPCRoute, T.TCPRoute, T.TLSRoute]);

/** Types that define no workload labels (every other type is assumed to). */
const NotWorkloads: ReadonlySet<ResourceType> = new Set([
  T.VirtualService, T.IstioGateway, T.Sidecar, T.PeerAuthentication, T.RequestAuthentication, T.AuthorizationPolicy, T.Telemetry,
  T.GatewayClass, T.Gateway, T.HTTPRoute, T.GRPCRoute, T.TCPRoute, T.TLSRoute, T.ReferenceGrant,
  T.Namespace, T.Secret, T.ConfigMap, T.EndpointSlice,
]);

/** Types whose `selector` / `workloadSelector` selects workloads (a Service's selector defines them instead). */
const SelectorTypes: ReadonlySet<ResourceType> = new Set([
  T.PeerAuthentication, T.RequestAuthentication, T.AuthorizationPolicy, T.Telemetry, T.Sidecar, T.ServiceEntry, T.DestinationRule, T.IstioGateway,
]);

/** Fields whose hosts no check compares across resources: Sidecar egress (`./*`) and Istio Gateway server hosts (read through the gateway reference). */
const IgnoredHostFields: ReadonlyMap<ResourceType, ReadonlySet<string>> = new Map([
  [T.Sidecar, new Set(['hosts'])],
  [T.IstioGateway, new Set(['hosts'])],
]);

const Known: ReadonlySet<string> = new Set(Object.values(T));

type Json = Record<string, unknown>;

/** The reach of `r`'s analysis; `rootNamespace` is the mesh's (`istio-system`). */
export function reachOf(r: Resource, rootNamespace: string): Reach {
  if (Unanalysed.has(r.type)) return { reads: [], provides: [] };
  const own = r.metadata.namespace;
  const reads = new Set<string>([`ns:${own}`, `ns:${rootNamespace}`, 'ns:']);
  const provides = new Set<string>(ReadOnlyThroughHosts.has(r.type) ? [] : [`ns:${own}`]);
  if (!Known.has(r.type)) reads.add(Everything);
  if (r.type === T.Namespace) provides.add(`ns:${r.metadata.name}`);
  if (!NotWorkloads.has(r.type)) provides.add('labels');
  if (r.type === T.Service) declareHost(r.metadata.name, provides);
  if (r.type === T.Secret) provides.add('secrets');
  if (r.type === T.IstioGateway) {
    for (const f of ['labels', 'secrets', 'istio-gateways']) reads.add(f);
    provides.add('istio-gateways');
  }
  // Mesh-wide policies select workloads in every namespace.
  if (SelectorTypes.has(r.type) && (own === rootNamespace || hasSelector(r.spec))) reads.add('labels');
  scan(r.spec, { type: r.type, own, ignored: IgnoredHostFields.get(r.type), reads, provides }, true);
  return { reads: [...reads], provides: [...provides] };
}

function hasSelector(spec: unknown): boolean {
  const s = spec as { selector?: unknown; workloadSelector?: unknown } | undefined;
  return s !== null && typeof s === 'object' && (s.selector !== undefined || s.workloadSelector !== undefined);
}

/** The first DNS label of a host, lower case; undefined for a wildcard. */
function hostKey(host: string): string | undefined {
  if (host === '' || host.startsWith('*')) return undefined;
  const dot = host.indexOf('.');
  return (dot < 0 ? host : host.slice(0, dot)).toLowerCase();
}

/** `name.ns`, `name.ns.svc`, `name.ns.svc.<suffix>`: the namespace label (harmless when it is not one). */
function hostNamespace(host: string): string | undefined {
  const parts = host.split('.');
  return parts.length >= 2 && !host.startsWith('*') ? parts[1].toLowerCase() : undefined;
}

/** Splits `ns/host` (Sidecar, Gateway server hosts) into its namespace (`.` = own, `*` = any) and host. */
function splitNamespaced(value: string, own: string): { ns: string | undefined; host: string } {
  const slash = value.indexOf('/');
  if (slash < 0) return { ns: undefined, host: value };
  const ns = value.slice(0, slash);
  return { ns: ns === '.' ? own : ns === '*' || ns === '~' ? undefined : ns, host: value.slice(slash + 1) };
}

const DR = T.DestinationRule;

function declareHost(host: string, provides: Set<string>): void {
  const key = hostKey(host);
  provides.add(key === undefined ? 'host:*wild' : `host:${key}`);
  provides.add('host:*all');
}

function claimHost(type: ResourceType, host: string, reads: Set<string>, provides: Set<string>): void {
  const key = hostKey(host);
  reads.add(`claim:${type}:*wild`);
  if (key === undefined) {
    provides.add(`claim:${type}:*wild`);
  } else {
    reads.add(`claim:${type}:${key}`);
    provides.add(`claim:${type}:${key}`);
  }
  provides.add(`claim:${type}:*all`);
  // A DestinationRule's subsets are judged by the routes that use them (SUBSET_NO_WORKLOADS).
  if (type === DR) {
    reads.add('ref:*wild');
    reads.add(key === undefined ? 'ref:*all' : `ref:${key}`);
  }
}

function referHost(host: string, reads: Set<string>, provides: Set<string>): void {
  const key = hostKey(host);
  provides.add(key === undefined ? 'ref:*wild' : `ref:${key}`);
  provides.add('ref:*all');
  if (key === undefined) {
    reads.add('host:*all');
    reads.add(`claim:${DR}:*all`);
    return;
  }
  for (const f of [`host:${key}`, 'host:*wild', `claim:${DR}:${key}`, `claim:${DR}:*wild`]) reads.add(f);
}

function mention(ns: string | undefined, reads: Set<string>): void {
  if (ns !== undefined && ns !== '') reads.add(`ns:${ns}`);
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

interface ScanContext {
  readonly type: ResourceType;
  readonly own: string;
  readonly ignored: ReadonlySet<string> | undefined;
  readonly reads: Set<string>;
  readonly provides: Set<string>;
}

/** Walks a spec for the references named in the module doc; `top` for the spec itself. */
function scan(v: unknown, c: ScanContext, top: boolean): void {
  if (Array.isArray(v)) {
    for (const x of v) scan(x, c, false);
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const o = v as Json;
  const { reads, provides } = c;
  if (o.kind === 'Hostname' && typeof o.name === 'string') referHost(o.name, reads, provides);
  for (const [k, x] of Object.entries(o)) {
    if (c.ignored?.has(k)) continue;
    switch (k) {
      case 'namespace':
        for (const ns of strings(x)) mention(ns, reads);
        break;
      case 'namespaces':
      case 'notNamespaces':
        for (const ns of strings(x)) {
          if (ns.includes('*')) reads.add(Everything);
          else mention(ns, reads);
        }
        break;
      case 'gateways':
        for (const g of strings(x)) {
          if (g === 'mesh') continue;
          const slash = g.indexOf('/');
          // `ns/name`, or the deprecated `name.ns[.svc.cluster.local]`.
          mention(slash >= 0 ? g.slice(0, slash) : hostNamespace(g), reads);
        }
        break;
      case 'host':
        // A DestinationRule's own host is a claim as well; a route destination's only a reference.
        for (const h of strings(x)) {
          referHost(h, reads, provides);
          if (top) claimHost(c.type, h, reads, provides);
          mention(hostNamespace(h), reads);
        }
        break;
      case 'hosts':
      case 'hostnames':
      case 'hostname':
        for (const value of strings(x)) {
          const { ns, host } = splitNamespaced(value, c.own);
          mention(ns, reads);
          mention(hostNamespace(host), reads);
          claimHost(c.type, host, reads, provides);
          if (c.type === T.ServiceEntry) declareHost(host, provides);
        }
        break;
    }
    if (x !== null && typeof x === 'object') scan(x, c, false);
  }
}
