/**
 * Which hosts exist, and where they are visible: every Kubernetes Service (by FQDN, exported per
 * its `networking.istio.io/exportTo` annotation) and every ServiceEntry host (per its
 * `exportTo`), with their ports. A lookup names the namespaces a rule applies in and gets the
 * entries visible there apart from those that exist but are not exported there — the runtime
 * honours exportTo, so a rule that names a host its namespace cannot see routes nowhere. Built
 * once per analysis; lookups of concrete hosts are map hits plus a scan of wildcard entries.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { exportScopes, exportScopesOverlap, foldHost, hostMatches, hostsIntersect, isWildcardHost, kubernetesServiceAliases, resolveHost, serviceExportTo, serviceFqdn } from '../host.ts';
import { list, view, type ServiceEntryView, type ServiceView } from '../views.ts';

/** A host some Service or ServiceEntry declares. */
export interface HostEntry {
  /** Lower-case FQDN, or a wildcard for ServiceEntry hosts such as `*.example.com`. */
  readonly host: string;
  readonly resource: Resource;
  /** Namespaces it is exported to (`*` = all). */
  readonly scopes: ReadonlySet<string>;
  readonly ports: readonly number[];
}

export interface HostLookup {
  /** Entries visible in at least one of the viewer namespaces. */
  readonly visible: readonly HostEntry[];
  /** Entries that exist but are exported elsewhere. */
  readonly hidden: readonly HostEntry[];
}

export interface HostIndex {
  /** Entries for the resolved `host`, split by visibility from `viewers` (namespaces, `*` = all). */
  lookup(host: string, viewers: ReadonlySet<string>): HostLookup;
  /** The Kubernetes Service a resolved host names (`name.ns`, `name.ns.svc` accepted), any visibility. */
  serviceFor(host: string): Resource | undefined;
  /** Every entry, in input order (Services, then ServiceEntries). */
  readonly entries: readonly HostEntry[];
}

/** The namespaces a rule (VirtualService, DestinationRule) of `namespace` applies in, per Istio's analyzer: its own, or its exportTo. */
export function ruleViewers(exportTo: readonly string[] | undefined, namespace: string): ReadonlySet<string> {
  const e = list(exportTo).filter((x): x is string => typeof x === 'string');
  return e.length === 0 ? new Set([namespace]) : exportScopes(e, namespace);
}

/** Builds the index over the Services and ServiceEntries in `of`. */
export function buildHostIndex(of: (type: string) => readonly Resource[], domainSuffix: string): HostIndex {
  const entries: HostEntry[] = [];
  const exact = new Map<string, HostEntry[]>();
  const wildcards: HostEntry[] = [];
  const services = new Map<string, Resource>();
  const add = (e: HostEntry): void => {
    entries.push(e);
    if (isWildcardHost(e.host)) wildcards.push(e);
    else {
      let l = exact.get(e.host);
      if (l === undefined) exact.set(e.host, (l = []));
      l.push(e);
    }
  };
  for (const s of of(ResourceTypes.Service)) {
    const host = serviceFqdn(s.metadata.name, s.metadata.namespace, domainSuffix);
    services.set(host, s);
    const ports = list(view<ServiceView>(s).ports).map((p) => p?.port).filter((p): p is number => typeof p === 'number');
    add({ host, resource: s, scopes: exportScopes(serviceExportTo(s.metadata.annotations), s.metadata.namespace), ports });
  }
  for (const se of of(ResourceTypes.ServiceEntry)) {
    const spec = view<ServiceEntryView & { exportTo?: readonly string[] }>(se);
    const scopes = exportScopes(list(spec.exportTo).filter((x): x is string => typeof x === 'string'), se.metadata.namespace);
    const ports = list(spec.ports).map((p) => p?.number).filter((p): p is number => typeof p === 'number');
    for (const h of list(spec.hosts)) {
      if (typeof h === 'string' && h !== '') add({ host: foldHost(resolveHost(h, se.metadata.namespace, domainSuffix)), resource: se, scopes, ports });
    }
  }

  const candidates = (host: string): HostEntry[] => {
    const out: HostEntry[] = [];
    if (isWildcardHost(host)) {
      // A wildcard destination is known when it covers some declared host or meets a wildcard entry.
      for (const [h, l] of exact) if (hostMatches(host, h)) out.push(...l);
      for (const w of wildcards) if (hostsIntersect(w.host, host)) out.push(w);
      return out;
    }
    for (const alias of new Set([host, ...kubernetesServiceAliases(host, domainSuffix)])) out.push(...(exact.get(alias) ?? []));
    for (const w of wildcards) if (hostMatches(w.host, host)) out.push(w);
    return out;
  };

  return {
    entries,
    lookup(host, viewers) {
      const visible: HostEntry[] = [];
      const hidden: HostEntry[] = [];
      for (const e of candidates(host)) (exportScopesOverlap(e.scopes, viewers) ? visible : hidden).push(e);
      return { visible, hidden };
    },
    serviceFor(host) {
      for (const alias of kubernetesServiceAliases(host, domainSuffix)) {
        const s = services.get(alias);
        if (s !== undefined) return s;
      }
      return undefined;
    },
  };
}

/** Why no declared host is visible: none exists, or those that do are exported elsewhere. */
export function notVisibleWhy(hidden: readonly HostEntry[], viewers: ReadonlySet<string>): string {
  const where = `namespace${viewers.size === 1 ? '' : 's'} ${[...viewers].join(', ')}`;
  const describe = (e: HostEntry): string => `${e.resource.kind} ${e.resource.metadata.namespace}/${e.resource.metadata.name}${isWildcardHost(e.host) ? ` (${e.host})` : ''} is exported to ${[...e.scopes].join(', ') || 'no namespace'}`;
  const exact = hidden.filter((e) => !isWildcardHost(e.host));
  if (exact.length > 0) return `is not exported to ${where} (${exact.map(describe).join('; ')})`;
  if (hidden.length > 0) return `is neither a Service nor a ServiceEntry host visible in ${where} (${hidden.map(describe).join('; ')})`;
  return 'is neither a Service nor a ServiceEntry host';
}
