/**
 * Builds the service registry from configuration: Kubernetes `Service` + `EndpointSlice`
 * (+ `Pod` labels when present), Istio `ServiceEntry` + `WorkloadEntry`. Follows Istio:
 * a Service's selector also selects WorkloadEntries in its namespace; a ServiceEntry's
 * `workloadSelector` selects WorkloadEntries in its namespace; a DNS ServiceEntry without
 * endpoints resolves its own hosts. The result is immutable, indexed by hostname and namespace.
 */
import { createHash } from 'node:crypto';
import type { Resource } from '../config/resource.ts';
import { ResourceTypes } from '../config/resource.ts';
import type { EndpointInfo, PortProtocol, Resolution, ServiceInfo, ServicePort, ServiceRegistry } from './types.ts';
import { bodyView, list, view, type EndpointSliceView, type ServiceEntryView, type ServiceView, type WorkloadEntryView } from '../config/views.ts';
import { selectorMatches } from '../config/label-selector.ts';
import { parseProtocol, servicePortProtocol } from './protocol.ts';
import { localityOf } from './locality.ts';
import { allocateVips } from './vip.ts';
import { hostMatches, kubernetesServiceAliases, resolveHost } from '../config/host.ts';

/** Anything that lists resources by type (a ConfigStore qualifies). */
export interface ResourceSource {
  list(type: string, namespace?: string): readonly Resource[];
}

export interface RegistryOptions {
  /** Kubernetes DNS suffix; default `cluster.local`. */
  readonly domainSuffix?: string;
  /** Give Services without a `clusterIP` a VIP from 240.240.0.0/16 (vip.ts); default false. */
  readonly autoAllocateVips?: boolean;
}

const PodType = ResourceTypes.Pod;
const ExportToAnnotation = 'networking.istio.io/exportTo';

interface Entry {
  readonly service: ServiceInfo;
  readonly endpoints: Map<number, EndpointInfo[]>;
}

function byName(a: Resource, b: Resource): number {
  return a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name);
}

/** Istio resolves hostname conflicts in favour of the oldest resource; name order breaks ties. */
function byAge(a: Resource, b: Resource): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : byName(a, b);
}

function exportToOf(v: readonly string[] | undefined): readonly string[] {
  return Object.freeze(v !== undefined && v.length > 0 ? [...v] : ['*']);
}

function targetPortNumber(p: { port?: number; targetPort?: number | string }): number {
  return typeof p.targetPort === 'number' ? p.targetPort : (p.port ?? 0);
}

function weOf(r: Resource): WorkloadEntryView {
  return view<WorkloadEntryView>(r);
}

function endpointFromWorkloadEntry(
  we: WorkloadEntryView,
  port: ServicePort,
  namespace: string,
  workloadName: string | undefined,
  defaultPort: number,
): EndpointInfo | undefined {
  if (we.address === undefined || we.address === '') return undefined;
  const labels = Object.freeze({ ...(we.labels ?? {}) });
  return Object.freeze({
    address: we.address,
    port: we.ports?.[port.name] ?? defaultPort,
    servicePortName: port.name,
    labels,
    serviceAccount: we.serviceAccount ?? 'default',
    locality: localityOf({ explicit: we.locality, labels }),
    weight: we.weight !== undefined && we.weight > 0 ? we.weight : 1,
    healthy: true,
    workloadName,
    namespace,
  });
}

function sortEndpoints(eps: EndpointInfo[]): EndpointInfo[] {
  return eps.sort((a, b) => a.address.localeCompare(b.address) || a.port - b.port);
}

function clusterIpsOf(spec: ServiceView): string[] {
  return list(spec.clusterIPs).length > 0 ? [...list(spec.clusterIPs)] : spec.clusterIP !== undefined ? [spec.clusterIP] : [];
}

/** VIPs for Services that declare no cluster IP (not headless, not ExternalName), by `ns/name`. */
function autoVips(src: ResourceSource): Map<string, string> {
  const taken = new Set<string>();
  const want: { namespace: string; name: string }[] = [];
  for (const r of src.list(ResourceTypes.Service)) {
    const spec = view<ServiceView>(r);
    const ips = clusterIpsOf(spec).filter((a) => a !== '');
    ips.forEach((a) => taken.add(a));
    if (ips.length === 0 && spec.type !== 'ExternalName') want.push({ namespace: r.metadata.namespace, name: r.metadata.name });
  }
  return allocateVips(want, taken);
}

function kubernetesServices(src: ResourceSource, suffix: string, vips: ReadonlyMap<string, string>): Entry[] {
  const slices = src.list(ResourceTypes.EndpointSlice);
  const pods = new Map<string, Resource>();
  for (const p of src.list(PodType)) pods.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
  const wes = src.list(ResourceTypes.WorkloadEntry);
  const out: Entry[] = [];
  for (const r of [...src.list(ResourceTypes.Service)].sort(byAge)) {
    const spec = view<ServiceView>(r);
    if (spec.type === 'ExternalName') continue; // Istio models these as DNS aliases; not supported yet.
    const ns = r.metadata.namespace;
    const ports: ServicePort[] = list(spec.ports).map((p) =>
      Object.freeze({ name: p.name ?? '', port: p.port ?? 0, targetPort: targetPortNumber(p), protocol: servicePortProtocol(p) }),
    );
    let addrs = clusterIpsOf(spec).filter((a) => a !== '');
    const vip = vips.get(`${ns}/${r.metadata.name}`);
    if (addrs.length === 0 && vip !== undefined) addrs = [vip];
    const headless = addrs.includes('None');
    const service: ServiceInfo = Object.freeze({
      hostname: `${r.metadata.name}.${ns}.svc.${suffix}`,
      namespace: ns,
      name: r.metadata.name,
      ports: Object.freeze(ports),
      addresses: Object.freeze(addrs.filter((a) => a !== 'None' && a !== '')),
      resolution: (headless ? 'NONE' : 'STATIC') as Resolution,
      location: 'MESH_INTERNAL' as const,
      selector: spec.selector !== undefined ? Object.freeze({ ...spec.selector }) : undefined,
      exportTo: exportToOf(r.metadata.annotations[ExportToAnnotation]?.split(',').map((s) => s.trim()).filter(Boolean)),
      labels: r.metadata.labels,
      origin: `${r.type}:${ns}/${r.metadata.name}`,
    });
    const endpoints = new Map<number, EndpointInfo[]>();
    for (const port of ports) endpoints.set(port.port, []);
    for (const slice of slices) {
      if (slice.metadata.namespace !== ns || slice.metadata.labels['kubernetes.io/service-name'] !== r.metadata.name) continue;
      const body = bodyView<EndpointSliceView>(slice);
      for (const sp of list(body.ports)) {
        const port = ports.find((p) => p.name === (sp.name ?? ''));
        if (port === undefined) continue;
        for (const ep of list(body.endpoints)) {
          const pod = ep.targetRef?.kind === 'Pod' && ep.targetRef.name !== undefined
            ? pods.get(`${ep.targetRef.namespace ?? ns}/${ep.targetRef.name}`)
            : undefined;
          const labels = pod?.metadata.labels ?? {};
          const podSpec = pod !== undefined ? view<{ serviceAccountName?: string }>(pod) : {};
          for (const address of list(ep.addresses)) {
            endpoints.get(port.port)!.push(Object.freeze({
              address,
              port: sp.port ?? port.targetPort,
              servicePortName: port.name,
              labels,
              serviceAccount: podSpec.serviceAccountName ?? 'default',
              locality: localityOf({ labels, zone: ep.zone }),
              weight: 1,
              healthy: ep.conditions?.ready !== false,
              workloadName: ep.targetRef?.name,
              namespace: ns,
            }));
          }
        }
      }
    }
    // Istio: a Service's selector also selects WorkloadEntries of its namespace.
    if (service.selector !== undefined && Object.keys(service.selector).length > 0) {
      for (const we of wes) {
        if (we.metadata.namespace !== ns) continue;
        const s = weOf(we);
        if (!selectorMatches(service.selector, s.labels ?? {})) continue;
        for (const port of ports) {
          const e = endpointFromWorkloadEntry(s, port, ns, we.metadata.name, port.targetPort);
          if (e !== undefined) endpoints.get(port.port)!.push(e);
        }
      }
    }
    out.push({ service, endpoints });
  }
  return out;
}

function resolutionOf(s: string | undefined): Resolution {
  return s === 'DNS' || s === 'DNS_ROUND_ROBIN' || s === 'STATIC' ? s : 'NONE';
}

function serviceEntries(src: ResourceSource): Entry[] {
  const wes = src.list(ResourceTypes.WorkloadEntry);
  const out: Entry[] = [];
  for (const r of [...src.list(ResourceTypes.ServiceEntry)].sort(byAge)) {
    const spec = view<ServiceEntryView>(r);
    const ns = r.metadata.namespace;
    const resolution = resolutionOf(spec.resolution);
    const ports: ServicePort[] = list(spec.ports).map((p) =>
      Object.freeze({
        name: p.name ?? '',
        port: p.number ?? 0,
        targetPort: p.targetPort ?? p.number ?? 0,
        protocol: (parseProtocol(p.protocol) ?? 'UNKNOWN') as PortProtocol,
      }),
    );
    const selector = spec.workloadSelector?.labels;
    for (const host of list(spec.hosts)) {
      const service: ServiceInfo = Object.freeze({
        hostname: host,
        namespace: ns,
        name: r.metadata.name,
        ports: Object.freeze(ports),
        addresses: Object.freeze([...list(spec.addresses)]),
        resolution,
        location: spec.location === 'MESH_INTERNAL' ? 'MESH_INTERNAL' as const : 'MESH_EXTERNAL' as const,
        selector: selector !== undefined ? Object.freeze({ ...selector }) : undefined,
        exportTo: exportToOf(spec.exportTo),
        labels: r.metadata.labels,
        origin: `${r.type}:${ns}/${r.metadata.name}`,
      });
      const endpoints = new Map<number, EndpointInfo[]>();
      for (const port of ports) {
        const eps: EndpointInfo[] = [];
        spec.endpoints?.forEach((we, i) => {
          const e = endpointFromWorkloadEntry(we, port, ns, `${r.metadata.name}-${i}`, port.targetPort);
          if (e !== undefined) eps.push(e);
        });
        if (selector !== undefined) {
          for (const we of wes) {
            if (we.metadata.namespace !== ns || !selectorMatches(selector, weOf(we).labels ?? {})) continue;
            const e = endpointFromWorkloadEntry(weOf(we), port, ns, we.metadata.name, port.targetPort);
            if (e !== undefined) eps.push(e);
          }
        }
        // A DNS ServiceEntry without endpoints resolves its own (non-wildcard) host.
        if (eps.length === 0 && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !host.includes('*')) {
          eps.push(Object.freeze({
            address: host, port: port.targetPort, servicePortName: port.name, labels: {}, serviceAccount: '',
            locality: localityOf({}), weight: 1, healthy: true, namespace: ns,
          }));
        }
        endpoints.set(port.port, eps);
      }
      out.push({ service, endpoints });
    }
  }
  return out;
}

class Registry implements ServiceRegistry {
  readonly domainSuffix: string;
  readonly version: string;
  readonly #all: readonly ServiceInfo[];
  readonly #byHost = new Map<string, Entry>();
  readonly #byNamespace = new Map<string, ServiceInfo[]>();
  readonly #wildcards: readonly ServiceInfo[];

  constructor(entries: readonly Entry[], domainSuffix: string) {
    this.domainSuffix = domainSuffix;
    for (const e of entries) {
      // First declaration wins (Services before ServiceEntries, older before newer), as in Istio.
      if (this.#byHost.has(e.service.hostname)) continue;
      for (const eps of e.endpoints.values()) sortEndpoints(eps);
      this.#byHost.set(e.service.hostname, e);
    }
    const all = [...this.#byHost.values()].map((e) => e.service);
    all.sort((a, b) => Number(a.hostname.includes('*')) - Number(b.hostname.includes('*')) || a.hostname.localeCompare(b.hostname));
    this.#all = Object.freeze(all);
    for (const s of all) {
      const l = this.#byNamespace.get(s.namespace) ?? [];
      l.push(s);
      this.#byNamespace.set(s.namespace, l);
    }
    // Most specific (longest) wildcard first.
    this.#wildcards = Object.freeze(all.filter((s) => s.hostname.includes('*')).sort((a, b) => b.hostname.length - a.hostname.length));
    this.version = fingerprint([...this.#byHost.values()]);
  }

  services(): readonly ServiceInfo[] { return this.#all; }
  service(hostname: string): ServiceInfo | undefined { return this.#byHost.get(hostname)?.service; }
  servicesInNamespace(namespace: string): readonly ServiceInfo[] { return this.#byNamespace.get(namespace) ?? []; }

  qualify(host: string, fromNamespace: string): string {
    return resolveHost(host, fromNamespace, this.domainSuffix);
  }

  lookupHost(host: string, fromNamespace: string): ServiceInfo | undefined {
    const candidates = [host];
    if (!host.includes('*')) {
      // Clients also resolve `name.ns` and `name.ns.svc` through the DNS search path.
      if (!host.includes('.')) candidates.push(this.qualify(host, fromNamespace));
      else candidates.push(...kubernetesServiceAliases(host, this.domainSuffix).slice(1));
    }
    for (const h of candidates) {
      const s = this.#byHost.get(h)?.service;
      if (s !== undefined && this.visibleTo(s, fromNamespace)) return s;
    }
    if (host.includes('*')) return undefined;
    for (const w of this.#wildcards) if (hostMatches(w.hostname, host) && this.visibleTo(w, fromNamespace)) return w;
    return undefined;
  }

  visibleTo(service: ServiceInfo, namespace: string): boolean {
    for (const e of service.exportTo) {
      if (e === '*') return true;
      if (e === '.' && namespace === service.namespace) return true;
      if (e === namespace) return true;
    }
    return false;
  }

  endpoints(hostname: string, port: number): readonly EndpointInfo[] {
    return this.#byHost.get(hostname)?.endpoints.get(port) ?? [];
  }
}

/** A stable string for a set of entries, so snapshots can reuse an unchanged registry by identity. */
function fingerprint(entries: readonly Entry[]): string {
  const parts: string[] = [];
  for (const e of entries) parts.push(JSON.stringify(e.service), JSON.stringify([...e.endpoints]));
  return `${entries.length}-${createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16)}`;
}

/** Builds the registry from every Service/EndpointSlice/Pod/ServiceEntry/WorkloadEntry in `src`. */
export function buildRegistry(src: ResourceSource, opts: RegistryOptions = {}): ServiceRegistry {
  const suffix = opts.domainSuffix ?? 'cluster.local';
  const vips = opts.autoAllocateVips === true ? autoVips(src) : new Map<string, string>();
  return new Registry([...kubernetesServices(src, suffix, vips), ...serviceEntries(src)], suffix);
}

/** The resource types the registry reads; a change to any other type cannot change it. */
export const RegistryInputTypes: readonly string[] = Object.freeze([
  ResourceTypes.Service, ResourceTypes.EndpointSlice, ResourceTypes.ServiceEntry, ResourceTypes.WorkloadEntry, PodType,
]);
