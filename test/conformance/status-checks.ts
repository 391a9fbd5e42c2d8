/**
 * A case's `statusChecks` evaluated against the Gateway API status Trellis computes for the
 * config the runner applied (`computeRouteStatus` / `computeListenerStatus`, the same functions
 * the control plane uses), over exactly the objects written to the watched config dir minus the
 * runner's marker routes. Returns one message per failed check; checks it cannot evaluate
 * (exact `parents` / `listeners` documents) come back as `unsupported`.
 */
import { stringify } from 'yaml';
import type { K8sObject, StatusCheck } from './corpus.ts';
import { resourcesFromYaml } from '../../src/registry/test-support.ts';
import { inputsFromResources } from '../../src/control/translate/routes/test-support.ts';
import { computeListenerStatus, computeRouteStatus } from '../../src/control/translate/routes/index.ts';

export interface StatusResult {
  failures: string[];
  unsupported: string[];
}

/** Evaluates `checks` over `objects` (routes of kind `routeKind` unless a check says otherwise). */
export function evaluateStatusChecks(objects: readonly K8sObject[], checks: readonly StatusCheck[], routeKind = 'HTTPRoute'): StatusResult {
  const out: StatusResult = { failures: [], unsupported: [] };
  if (checks.length === 0) return out;
  const resources = resourcesFromYaml(objects.map((o) => stringify(o)).join('---\n'));
  const inputs = inputsFromResources(resources);
  const routes = computeRouteStatus(inputs);
  const listeners = computeListenerStatus(inputs);
  const routeStatus = (name: string) =>
    routes.get(`gateway.networking.k8s.io/${routeKind}:${name}`) ?? routes.get(`gateway.networking.k8s.io/HTTPRoute:${name}`) ?? routes.get(`gateway.networking.k8s.io/GRPCRoute:${name}`);
  for (const sc of checks) {
    const label = JSON.stringify(sc);
    if (sc.parents !== undefined || sc.listeners !== undefined) {
      out.unsupported.push(`${label}: exact status documents are not compared`);
      continue;
    }
    if (typeof sc.route === 'string') {
      const parents = routeStatus(sc.route) ?? [];
      if (sc.latestObservedGeneration) {
        const gen = resources.find((r) => `${r.metadata.namespace}/${r.metadata.name}` === sc.route && r.kind.endsWith('Route'))?.metadata.generation;
        const bad = parents.flatMap((p) => p.conditions).filter((c) => c.observedGeneration !== gen);
        if (parents.length === 0 || bad.length > 0) out.failures.push(`${sc.route}: conditions with observedGeneration != ${gen}: ${bad.map((c) => c.type).join(', ') || 'no status'}`);
        continue;
      }
      if (sc.noAcceptedParents) {
        const ok = parents.length === 0 || (parents.length === 1 && parents[0].conditions.find((c) => c.type === 'Accepted')?.status === 'False');
        if (!ok) out.failures.push(`${sc.route}: expected no accepted parents, got ${JSON.stringify(parents.map((p) => p.conditions))}`);
        continue;
      }
      const [pns, pname] = String(sc.parent ?? '').split('/');
      const routeNs = sc.route.split('/')[0];
      const ps = parents.find((p) => p.parentRef.name === pname && (p.parentRef.namespace ?? routeNs) === pns);
      if (ps === undefined) {
        out.failures.push(`${sc.route}: no parent status for ${sc.parent}`);
        continue;
      }
      const cond = ps.conditions.find((c) => c.type === sc.condition);
      if (cond?.status !== sc.status || (sc.reason !== undefined && cond?.reason !== sc.reason)) {
        out.failures.push(`${sc.route} parent ${sc.parent}: ${sc.condition} want ${sc.status}${sc.reason ? `/${sc.reason}` : ''}, got ${cond ? `${cond.status}/${cond.reason}` : 'none'}`);
      }
      continue;
    }
    if (typeof sc.gateway === 'string' && sc.attachedRoutes !== undefined) {
      const ls = listeners.get(sc.gateway) ?? [];
      const ok = ls.length === 0 || (ls.length === 1 && ls[0].attachedRoutes === sc.attachedRoutes);
      if (!ok) out.failures.push(`${sc.gateway}: attachedRoutes want ${sc.attachedRoutes}, got ${JSON.stringify(ls.map((l) => [l.name, l.attachedRoutes]))}`);
      continue;
    }
    out.unsupported.push(`${label}: unknown status check`);
  }
  return out;
}
