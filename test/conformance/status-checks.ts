/**
 * A case's `statusChecks` (README "Case file fields") evaluated against status documents, with
 * upstream's matching rules (conformance/utils/kubernetes: HTTPRouteMustHaveParents,
 * GatewayStatusMustHaveListeners, conditionsMatch). The documents come from a `StatusView`: for
 * the runner, `statusViewOf` over exactly the objects written to the watched config dir (minus
 * the runner's markers) through `gatewayApiStatuses`, the computation the Kubernetes status
 * writer uses; for test/kube-status.test.ts, what the control plane wrote to the API server.
 */
import { stringify } from 'yaml';
import type { ExpectedCondition, ExpectedParent, K8sObject, StatusCheck } from './corpus.ts';
import { resourcesFromYaml, sourceOf } from '../../src/registry/test-support.ts';
import { buildSnapshot } from '../../src/control/snapshot/index.ts';
import { gatewayApiStatuses } from '../../src/control/gateway-api-status.ts';
import { DEFAULT_CONTROLLER_NAME } from '../../src/control/translate/routes/index.ts';

/** A status condition as written. */
export interface ConditionDoc {
  type: string;
  status: string;
  reason?: string;
  observedGeneration?: number;
}

/** A RouteParentStatus as written. */
export interface ParentDoc {
  parentRef: { group?: string; kind?: string; namespace?: string; name: string; sectionName?: string; port?: number };
  controllerName: string;
  conditions: readonly ConditionDoc[];
}

/** A ListenerStatus as written. */
export interface ListenerDoc {
  name: string;
  supportedKinds?: readonly { group?: string; kind: string }[];
  attachedRoutes: number;
  conditions: readonly ConditionDoc[];
}

/** The status the checks read; undefined for an object that does not exist. */
export interface StatusView {
  route(kind: string, namespace: string, name: string): { generation?: number; parents: readonly ParentDoc[] } | undefined;
  gateway(namespace: string, name: string): { listeners: readonly ListenerDoc[] } | undefined;
}

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** The controller name `{CONTROLLER_NAME}` stands for. */
export const CONTROLLER_NAME = DEFAULT_CONTROLLER_NAME;

/** The GatewayClass the upstream suite creates for the implementation (`{GATEWAY_CLASS_NAME}`). */
export function gatewayClassObject(name: string): K8sObject {
  return { apiVersion: `${GATEWAY_GROUP}/v1`, kind: 'GatewayClass', metadata: { name }, spec: { controllerName: CONTROLLER_NAME } };
}

/** The status Trellis computes for `objects` (Kubernetes-style), as a StatusView. */
export function statusViewOf(objects: readonly K8sObject[]): StatusView {
  const snapshot = buildSnapshot(sourceOf(resourcesFromYaml(objects.map((o) => stringify(o)).join('---\n'))));
  const byKey = new Map<string, { generation?: number; status: Record<string, unknown> }>();
  for (const d of gatewayApiStatuses(snapshot, CONTROLLER_NAME)) {
    byKey.set(`${d.resource.kind}/${d.resource.metadata.namespace}/${d.resource.metadata.name}`, { generation: d.resource.metadata.generation, status: d.status });
  }
  return {
    route: (kind, ns, name) => {
      const d = byKey.get(`${kind}/${ns}/${name}`);
      return d && { generation: d.generation, parents: d.status.parents as ParentDoc[] };
    },
    gateway: (ns, name) => {
      const d = byKey.get(`Gateway/${ns}/${name}`);
      return d && { listeners: d.status.listeners as ListenerDoc[] };
    },
  };
}

/** Upstream's findConditionInList: same type, status (when given) and reason (when given). */
function hasCondition(actual: readonly ConditionDoc[], want: ExpectedCondition): boolean {
  return actual.some((c) => c.type === want.type && (!want.status || c.status === want.status) && (!want.reason || c.reason === want.reason));
}

/** Upstream's conditionsMatch: every expected condition is present (an implementation may add more). */
function conditionsMatch(expected: readonly ExpectedCondition[], actual: readonly ConditionDoc[]): string | undefined {
  const missing = expected.filter((e) => !hasCondition(actual, e));
  if (missing.length === 0) return undefined;
  return `want conditions ${missing.map((e) => `${e.type}=${e.status ?? '*'}/${e.reason ?? '*'}`).join(', ')}, got ${actual.map((c) => `${c.type}=${c.status}/${c.reason ?? ''}`).join(', ') || 'none'}`;
}

const fill = (s: string) => s.replaceAll('{CONTROLLER_NAME}', CONTROLLER_NAME);

/** Why `a` is not the expected parent `e`, or undefined when it is. */
function parentMismatch(e: ExpectedParent, a: ParentDoc, namespaceRequired: boolean): string | undefined {
  if (a.controllerName !== fill(e.controllerName)) return `controllerName ${a.controllerName}`;
  const er = e.parentRef;
  const ar = a.parentRef;
  if (ar.group !== er.group) return `parentRef.group ${ar.group}`;
  if (ar.kind !== er.kind) return `parentRef.kind ${ar.kind}`;
  if (ar.name !== er.name) return `parentRef.name ${ar.name}`;
  if (ar.namespace !== er.namespace && (namespaceRequired || ar.namespace !== undefined)) return `parentRef.namespace ${ar.namespace}`;
  if (er.sectionName !== undefined && ar.sectionName !== er.sectionName) return `parentRef.sectionName ${ar.sectionName}`;
  if (er.port !== undefined && ar.port !== er.port) return `parentRef.port ${ar.port}`;
  return conditionsMatch(e.conditions, a.conditions);
}

/**
 * `parents`: the route has exactly as many parents as expected, each expected one matches a
 * distinct actual one (any order), and every condition carries the route's generation.
 */
function checkParents(sc: StatusCheck, route: { generation?: number; parents: readonly ParentDoc[] }): string | undefined {
  const want = sc.parents ?? [];
  const got = route.parents;
  if (got.length !== want.length) return `${want.length} parents expected, got ${got.length}: ${JSON.stringify(got)}`;
  const stale = got.flatMap((p) => p.conditions).filter((c) => c.observedGeneration !== route.generation);
  if (stale.length > 0) return `conditions with observedGeneration != ${route.generation}: ${stale.map((c) => c.type).join(', ')}`;
  const used = new Set<number>();
  for (const e of want) {
    const why: string[] = [];
    const i = got.findIndex((a, j) => {
      if (used.has(j)) return false;
      const m = parentMismatch(e, a, sc.namespaceRequired ?? false);
      if (m !== undefined) why.push(m);
      return m === undefined;
    });
    if (i < 0) return `no parent matches ${JSON.stringify(e)}: ${why.join('; ')}`;
    used.add(i);
  }
  return undefined;
}

/**
 * `listeners`: exactly the expected listeners (by name, any order), each with the expected
 * attachedRoutes, at least the expected supportedKinds (none when none are expected) and the
 * expected conditions.
 */
function checkListeners(sc: StatusCheck, listeners: readonly ListenerDoc[]): string | undefined {
  const want = sc.listeners ?? [];
  if (listeners.length !== want.length) return `${want.length} listeners expected, got ${listeners.map((l) => l.name).join(', ') || 'none'}`;
  for (const e of want) {
    const a = listeners.find((l) => l.name === e.name);
    if (a === undefined) return `no status for listener ${e.name}`;
    const kinds = a.supportedKinds ?? [];
    const ek = e.supportedKinds ?? [];
    if (ek.length === 0 && kinds.length !== 0) return `listener ${e.name}: supportedKinds ${JSON.stringify(kinds)}, want none`;
    const absent = ek.find((k) => !kinds.some((x) => (x.group ?? GATEWAY_GROUP) === (k.group ?? GATEWAY_GROUP) && x.kind === k.kind));
    if (absent !== undefined) return `listener ${e.name}: supportedKinds ${JSON.stringify(kinds)} lack ${absent.kind}`;
    if (a.attachedRoutes !== e.attachedRoutes) return `listener ${e.name}: attachedRoutes ${a.attachedRoutes}, want ${e.attachedRoutes}`;
    const c = conditionsMatch(e.conditions, a.conditions);
    if (c !== undefined) return `listener ${e.name}: ${c}`;
  }
  return undefined;
}

/** One check: undefined when it holds, else why not. Routes are of `routeKind` unless only the other kind exists. */
export function checkStatus(sc: StatusCheck, view: StatusView, routeKind = 'HTTPRoute'): string | undefined {
  if (typeof sc.route === 'string') {
    const [ns, name] = sc.route.split('/');
    const route = view.route(routeKind, ns, name) ?? view.route('HTTPRoute', ns, name) ?? view.route('GRPCRoute', ns, name);
    const parents = route?.parents ?? [];
    if (sc.parents !== undefined) {
      if (route === undefined) return `${sc.route}: no such route`;
      const why = checkParents(sc, route);
      return why && `${sc.route} parents: ${why}`;
    }
    if (sc.latestObservedGeneration) {
      const bad = parents.flatMap((p) => p.conditions).filter((c) => c.observedGeneration !== route?.generation);
      return parents.length === 0 || bad.length > 0 ? `${sc.route}: conditions with observedGeneration != ${route?.generation}: ${bad.map((c) => c.type).join(', ') || 'no status'}` : undefined;
    }
    if (sc.noAcceptedParents) {
      const ok = parents.length === 0 || (parents.length === 1 && parents[0].conditions.find((c) => c.type === 'Accepted')?.status === 'False');
      return ok ? undefined : `${sc.route}: expected no accepted parents, got ${JSON.stringify(parents.map((p) => p.conditions))}`;
    }
    const [pns, pname] = String(sc.parent ?? '').split('/');
    const ps = parents.find((p) => p.parentRef.name === pname && (p.parentRef.namespace ?? ns) === pns);
    if (ps === undefined) return `${sc.route}: no parent status for ${sc.parent}`;
    const cond = ps.conditions.find((c) => c.type === sc.condition);
    if (cond?.status === sc.status && (sc.reason === undefined || cond?.reason === sc.reason)) return undefined;
    return `${sc.route} parent ${sc.parent}: ${sc.condition} want ${sc.status}${sc.reason ? `/${sc.reason}` : ''}, got ${cond ? `${cond.status}/${cond.reason}` : 'none'}`;
  }
  if (typeof sc.gateway === 'string') {
    const [ns, name] = sc.gateway.split('/');
    const ls = view.gateway(ns, name)?.listeners ?? [];
    if (sc.listeners !== undefined) {
      const why = checkListeners(sc, ls);
      return why && `${sc.gateway} listeners: ${why}`;
    }
    if (sc.attachedRoutes !== undefined) {
      const ok = ls.length === 0 || (ls.length === 1 && ls[0].attachedRoutes === sc.attachedRoutes);
      return ok ? undefined : `${sc.gateway}: attachedRoutes want ${sc.attachedRoutes}, got ${JSON.stringify(ls.map((l) => [l.name, l.attachedRoutes]))}`;
    }
  }
  return `unknown status check ${JSON.stringify(sc)} (see knownCheck)`;
}

/** Whether `checkStatus` knows the shape of `sc` (the README's kinds of check). */
export function knownCheck(sc: StatusCheck): boolean {
  if (typeof sc.route === 'string') return sc.parents !== undefined || sc.latestObservedGeneration === true || sc.noAcceptedParents === true || (sc.parent !== undefined && sc.condition !== undefined);
  return typeof sc.gateway === 'string' && (sc.listeners !== undefined || sc.attachedRoutes !== undefined);
}

export interface StatusResult {
  failures: string[];
  /** Checks of a shape this runner does not know: reported as skipped, never as passed. */
  unsupported: string[];
}

/** Evaluates `checks` over the status of `objects`. */
export function evaluateStatusChecks(objects: readonly K8sObject[], checks: readonly StatusCheck[], routeKind = 'HTTPRoute'): StatusResult {
  const out: StatusResult = { failures: [], unsupported: [] };
  if (checks.length === 0) return out;
  const view = statusViewOf(objects);
  for (const sc of checks) {
    if (!knownCheck(sc)) out.unsupported.push(`${JSON.stringify(sc)}: unknown status check`);
    else {
      const why = checkStatus(sc, view, routeKind);
      if (why !== undefined) out.failures.push(why);
    }
  }
  return out;
}
