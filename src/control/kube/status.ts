/**
 * The status Trellis owes the objects it serves on Kubernetes, computed from a snapshot (pure; the
 * writer applies it): the Gateway API status (gateway-api-status.ts, the one computation the
 * conformance runner checks too) and, when asked, the analyzer's findings on Istio objects as
 * `status.validationMessages`, as istiod writes them with analysis on.
 */
import { ResourceTypes } from '../../config/resource.ts';
import type { Diagnostic } from '../../config/resource.ts';
import { analyzeConfig } from '../../config/analyze/index.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import { type DesiredStatus, gatewayApiStatuses } from '../gateway-api-status.ts';

export type { DesiredStatus };

type Json = Record<string, unknown>;

const IstioKinds = [ResourceTypes.VirtualService, ResourceTypes.DestinationRule, ResourceTypes.IstioGateway, ResourceTypes.ServiceEntry,
  ResourceTypes.Sidecar, ResourceTypes.PeerAuthentication, ResourceTypes.RequestAuthentication, ResourceTypes.AuthorizationPolicy];

function level(d: Diagnostic): string {
  return d.severity === 'error' ? 'ERROR' : d.severity === 'warning' ? 'WARNING' : 'INFO';
}

/** Every status this controller owes, from `s`. */
export function desiredStatuses(s: MeshSnapshot, opts: { analysis: boolean; controllerName?: string }): DesiredStatus[] {
  const out = gatewayApiStatuses(s, opts.controllerName);
  if (opts.analysis) {
    const all = IstioKinds.flatMap((t) => [...s.list(t)]);
    const findings = analyzeConfig([...all, ...s.list(ResourceTypes.Service), ...s.list(ResourceTypes.Gateway), ...s.list(ResourceTypes.Namespace)]);
    const byKey = new Map<string, Json[]>();
    for (const d of findings) {
      if (d.resource === undefined) continue;
      const key = `${d.resource.kind}/${d.resource.namespace}/${d.resource.name}`;
      if (!byKey.has(key)) byKey.set(key, []);
      byKey.get(key)!.push({ level: level(d), type: { code: d.code, name: d.code }, description: d.message, documentationUrl: 'https://github.com/trellis-mesh/trellis/blob/main/docs/diagnostics.md' });
    }
    for (const r of all) {
      const messages = byKey.get(`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`) ?? [];
      out.push({ resource: r, status: { validationMessages: messages, observedGeneration: r.metadata.generation } });
    }
  }
  return out;
}
