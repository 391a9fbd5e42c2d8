/**
 * The control plane's semantic gate: the file store already keeps schema-invalid documents out
 * (last-known-good per resource); this gate does the same for resources the analyzers find
 * semantically broken (a route to an undefined subset, a missing gateway...). A resource whose
 * new version has error diagnostics is not served: its last good version stays in force, or, if
 * it never had one, it is left out. A resource that did not change but became erroneous because
 * of another resource keeps being served as it is (there is no better version of it to serve).
 * Every decision is reported as a diagnostic, so operators see both the error and what is served.
 */
import type { Diagnostic, Resource, ResourceType } from '../config/resource.ts';
import { resourceKey } from '../config/resource.ts';
import { analyzeConfig } from '../config/analyze/index.ts';
import type { SnapshotSource } from './snapshot/snapshot.ts';

export interface GateResult {
  /** Resources whose served version changed (added, updated or removed), for push scoping. */
  readonly changed: readonly Resource[];
  /** Semantic diagnostics of the current config plus the gate's own decisions. */
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Gateway API route problems that the spec expresses in route status, not by dropping the route:
 * a backendRef to a missing Service or one not permitted by a ReferenceGrant leaves the route
 * attached (ResolvedRefs=False) and requests to that backend answer 500 (Gateway API
 * HTTPBackendRef; conformance HTTPRouteInvalidNonExistentBackendRef, HTTPRouteInvalidReferenceGrant).
 */
const StatusOnlyRouteCodes: ReadonlySet<string> = new Set(['ROUTE_BACKEND_NOT_FOUND', 'REF_NOT_PERMITTED']);
const GatewayApiRouteKinds: ReadonlySet<string> = new Set(['HTTPRoute', 'GRPCRoute', 'TCPRoute', 'TLSRoute']);

/**
 * Errors reported without withholding the resource. Conflicts between resources (two
 * VirtualServices for one host, two Gateways on one port and host, two Sidecars for one
 * workload): each side is reported, and withholding every side would serve less than serving them
 * (then the oldest wins, as in Istio). Gateway credentials: SDS resolves a credential per
 * gateway proxy, in that proxy's namespace, and a missing or broken Secret fails that server's TLS
 * only (as in Istio, and as Gateway API's ResolvedRefs=False listener status); the analysis cannot
 * see where a running control plane's gateway proxies live, and withholding the whole Gateway would
 * take its other servers down too.
 */
const ReportOnlyCodes: ReadonlySet<string> = new Set(['VS_HOST_CONFLICT', 'GATEWAY_CONFLICT', 'SELECTOR_CONFLICT', 'NAMESPACE_DEFAULT_CONFLICT', 'SECRET_NOT_FOUND', 'SECRET_INVALID']);

/** True when an error diagnostic keeps its resource from being served. */
export function blocksServing(d: Diagnostic): boolean {
  if (d.severity !== 'error' || d.resource === undefined || ReportOnlyCodes.has(d.code)) return false;
  return !(GatewayApiRouteKinds.has(d.resource.kind) && StatusOnlyRouteCodes.has(d.code));
}

function refKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** A SnapshotSource serving the gated view of a store. */
export class ConfigGate implements SnapshotSource {
  #served = new Map<string, Resource>();
  #byType = new Map<ResourceType, Resource[]>();
  #lastGood = new Map<string, Resource>();
  #revision = 0;
  readonly #domainSuffix: string;
  readonly #rootNamespace: string | undefined;

  constructor(opts: { domainSuffix?: string; rootNamespace?: string } = {}) {
    this.#domainSuffix = opts.domainSuffix ?? 'cluster.local';
    this.#rootNamespace = opts.rootNamespace;
  }

  get revision(): number {
    return this.#revision;
  }

  list(type: ResourceType, namespace?: string): readonly Resource[] {
    const all = this.#byType.get(type) ?? [];
    return namespace === undefined ? all : all.filter((r) => r.metadata.namespace === namespace);
  }

  types(): readonly ResourceType[] {
    return [...this.#byType.keys()];
  }

  /** Recomputes the served view from the store's current resources. */
  update(current: readonly Resource[]): GateResult {
    const analysis = analyzeConfig(current, { domainSuffix: this.#domainSuffix, ...(this.#rootNamespace !== undefined ? { rootNamespace: this.#rootNamespace } : {}) });
    const broken = new Set<string>();
    for (const d of analysis) {
      if (blocksServing(d) && d.resource) broken.add(refKey(d.resource.kind, d.resource.namespace, d.resource.name));
    }
    const decisions: Diagnostic[] = [];
    const next = new Map<string, Resource>();
    for (const r of current) {
      const key = resourceKey(r);
      const ref = { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
      const good = this.#lastGood.get(key);
      if (!broken.has(refKey(r.kind, r.metadata.namespace, r.metadata.name))) {
        next.set(key, r);
        this.#lastGood.set(key, r);
        continue;
      }
      if (good !== undefined && good !== r && JSON.stringify(good.spec) !== JSON.stringify(r.spec)) {
        next.set(key, good);
        decisions.push({ severity: 'warning', code: 'LAST_KNOWN_GOOD', message: `${r.kind} ${ref.namespace}/${ref.name} has errors; its previous valid version is still served`, resource: ref, file: r.source?.file, line: r.source?.line });
      } else if (good !== undefined) {
        next.set(key, r);
      } else {
        decisions.push({ severity: 'warning', code: 'NOT_SERVED', message: `${r.kind} ${ref.namespace}/${ref.name} has errors and no previous valid version; it is not sent to proxies`, resource: ref, file: r.source?.file, line: r.source?.line });
      }
    }
    const present = new Set(current.map(resourceKey));
    for (const key of [...this.#lastGood.keys()]) if (!present.has(key)) this.#lastGood.delete(key);

    const changed: Resource[] = [];
    for (const [key, r] of next) if (this.#served.get(key) !== r) changed.push(r);
    for (const [key, r] of this.#served) if (!next.has(key)) changed.push(r);
    if (changed.length > 0 || this.#revision === 0) {
      this.#revision++;
      this.#served = next;
      const byType = new Map<ResourceType, Resource[]>();
      for (const r of next.values()) {
        let l = byType.get(r.type);
        if (l === undefined) byType.set(r.type, (l = []));
        l.push(r);
      }
      for (const l of byType.values()) l.sort((a, b) => (a.metadata.namespace + '/' + a.metadata.name < b.metadata.namespace + '/' + b.metadata.name ? -1 : 1));
      this.#byType = byType;
    }
    return { changed, diagnostics: [...analysis, ...decisions] };
  }
}
