/**
 * The effective DestinationRule traffic policy for one cluster (service port, optional subset),
 * by Istio's merge rules: the rule's top-level policy, replaced component by component
 * (loadBalancer, connectionPool, outlierDetection, tls) by its portLevelSettings entry for the
 * port; then the subset's policy replaces components the same way, its own port-level entry last.
 */
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { IndexedDestinationRule } from '../snapshot/destination-rules.ts';
import type { PortTrafficPolicy, Subset, TrafficPolicy } from '../../config/views.ts';

/** The four policy components Istio merges. */
export interface EffectivePolicy {
  readonly loadBalancer?: PortTrafficPolicy['loadBalancer'];
  readonly connectionPool?: PortTrafficPolicy['connectionPool'];
  readonly outlierDetection?: PortTrafficPolicy['outlierDetection'];
  readonly tls?: PortTrafficPolicy['tls'];
}

function overlay(base: EffectivePolicy, p: PortTrafficPolicy | TrafficPolicy | undefined): EffectivePolicy {
  if (p === undefined) return base;
  return {
    loadBalancer: p.loadBalancer ?? base.loadBalancer,
    connectionPool: p.connectionPool ?? base.connectionPool,
    outlierDetection: p.outlierDetection ?? base.outlierDetection,
    tls: p.tls ?? base.tls,
  };
}

function withPort(base: EffectivePolicy, tp: TrafficPolicy | undefined, port: number): EffectivePolicy {
  const top = overlay(base, tp);
  return overlay(top, tp?.portLevelSettings?.find((s) => s.port?.number === port));
}

/** Effective policy of `rule` for `port` and `subset` ('' = none). */
export function effectivePolicy(rule: IndexedDestinationRule | undefined, port: number, subset: string): EffectivePolicy {
  if (rule === undefined) return {};
  const p = withPort({}, rule.spec.trafficPolicy, port);
  if (subset === '') return p;
  return withPort(p, findSubset(rule, subset)?.trafficPolicy, port);
}

/** A subset by name. */
export function findSubset(rule: IndexedDestinationRule | undefined, name: string): Subset | undefined {
  return rule?.spec.subsets?.find((s) => s.name === name);
}

/** The DestinationRule governing traffic from a proxy (namespace, labels) to a host, via the snapshot index. */
export function ruleFor(snapshot: MeshSnapshot, host: string, proxyNamespace: string, proxyLabels?: Readonly<Record<string, string>>): IndexedDestinationRule | undefined {
  const svc = snapshot.registry.service(host);
  return snapshot.destinationRules.lookup(host, proxyNamespace, svc?.namespace ?? proxyNamespace, proxyLabels);
}
