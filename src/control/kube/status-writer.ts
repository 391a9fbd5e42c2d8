/**
 * Writes status back to the API server, from the elected leader only (Lease
 * `trellis-status-leader` in the control plane's namespace), so replicas and revisions never
 * fight over it. After each config change (debounced) and periodically, the desired statuses
 * (status.ts) are compared with what was last written; changed ones are merged into the object's
 * current status (other controllers' route parents kept, `lastTransitionTime` kept for
 * conditions whose status did not change) and written to the `status` subresource.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Resource } from '../../config/resource.ts';
import { resourceKey } from '../../config/resource.ts';
import type { KubeRest } from '../../config/store/kubernetes-rest.ts';
import { apiStatus } from '../../config/store/kubernetes-rest.ts';
import { kubeKind, objectPath } from '../../config/store/kubernetes-kinds.ts';
import type { KubernetesStore } from '../../config/store/kubernetes.ts';
import { describeError } from '../../errors.ts';
import type { ControlPlane, ControlLogger } from '../control-plane.ts';
import { DEFAULT_CONTROLLER_NAME } from '../translate/routes/index.ts';
import { buildSnapshot } from '../snapshot/index.ts';
import type { MeshSnapshot } from '../snapshot/index.ts';
import { desiredStatuses } from './status.ts';
import { startLeaderElection } from './leader.ts';
import { SerialRounds } from './serial-rounds.ts';

type Json = Record<string, unknown>;
type Condition = { type: string; status: string; lastTransitionTime?: string } & Json;

function nowTime(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Conditions with lastTransitionTime: kept from `prev` when the status is the same, now otherwise. */
function stamp(next: readonly Json[] | undefined, prev: readonly Json[] | undefined): Json[] | undefined {
  if (next === undefined) return undefined;
  return next.map((c) => {
    const old = (prev as Condition[] | undefined)?.find((p) => p.type === c.type);
    return { ...c, lastTransitionTime: old !== undefined && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : nowTime() };
  });
}

/** Merges our desired status into the current one. */
export function mergeStatus(current: Json, desired: Json, controller: string): Json {
  const out: Json = { ...current, ...desired };
  if ('conditions' in desired) out.conditions = stamp(desired.conditions as Json[], current.conditions as Json[]);
  if ('listeners' in desired) {
    out.listeners = (desired.listeners as Json[]).map((l) => {
      const old = ((current.listeners as Json[] | undefined) ?? []).find((x) => x.name === l.name);
      return { ...l, conditions: stamp(l.conditions as Json[], old?.conditions as Json[] | undefined) };
    });
  }
  if ('parents' in desired) {
    const foreign = ((current.parents as Json[] | undefined) ?? []).filter((p) => p.controllerName !== controller);
    out.parents = [
      ...foreign,
      ...(desired.parents as Json[]).map((p) => {
        const old = ((current.parents as Json[] | undefined) ?? []).find((x) => x.controllerName === controller && isDeepStrictEqual(x.parentRef, p.parentRef));
        return { ...p, conditions: stamp(p.conditions as Json[], old?.conditions as Json[] | undefined) };
      }),
    ];
  }
  return out;
}

export interface StatusWriter {
  /** Writes what changed now (the leader only); resolves when done. */
  sync(): Promise<void>;
  isLeader(): boolean;
  close(): Promise<void>;
}

/** Starts leader election and, while leader, status writing. */
export async function startStatusWriter(o: {
  rest: KubeRest;
  store: KubernetesStore;
  cp: ControlPlane;
  namespace: string;
  identity: string;
  analysis: boolean;
  controllerName?: string;
  log?: ControlLogger;
  periodMs?: number;
}): Promise<StatusWriter> {
  const controller = o.controllerName ?? DEFAULT_CONTROLLER_NAME;
  const written = new Map<string, Json>();
  let view: MeshSnapshot | undefined;

  const writeOne = async (r: Resource, desired: Json): Promise<void> => {
    const kind = kubeKind(r.type);
    if (kind === undefined) return;
    const path = objectPath(kind, r.metadata.namespace, r.metadata.name, 'status');
    const current = await o.rest.request<{ status?: Json }>('GET', objectPath(kind, r.metadata.namespace, r.metadata.name));
    const merged = mergeStatus(current.status ?? {}, desired, controller);
    if (isDeepStrictEqual(merged, current.status ?? {})) return;
    await o.rest.request('PATCH', path, { contentType: 'application/merge-patch+json', body: { status: merged } });
  };

  const round = async (): Promise<void> => {
    if (!election.isLeader()) return;
    // Status is owed to every object, also those the config gate keeps from proxies (a route with
    // a bad parentRef must be told so): a snapshot of the whole store, not the one served.
    view = buildSnapshot(o.store, { mesh: o.cp.snapshot().mesh }, view);
    const all = desiredStatuses(view, { analysis: o.analysis, controllerName: controller });
    const seen = new Set<string>();
    for (const { resource, status } of all) {
      const key = resourceKey(resource);
      seen.add(key);
      // Generation is part of what was written (observedGeneration), so a spec change rewrites.
      if (isDeepStrictEqual(written.get(key), status)) continue;
      try {
        await writeOne(resource, status);
        written.set(key, status);
      } catch (err) {
        if (apiStatus(err) === 404) continue; // deleted meanwhile
        o.log?.warn({ resource: key, error: describeError(err) }, 'status write failed; retrying on the next round');
      }
    }
    for (const key of written.keys()) if (!seen.has(key)) written.delete(key);
  };

  const rounds = new SerialRounds(() => round().catch((err) => o.log?.warn({ error: describeError(err) }, 'status round failed')));
  const sync = (): Promise<void> => rounds.run();

  const election = startLeaderElection({
    rest: o.rest,
    namespace: o.namespace,
    name: 'trellis-status-leader',
    identity: o.identity,
    onChange: (leader) => {
      o.log?.info({ identity: o.identity, leader }, leader ? 'became the status leader' : 'no longer the status leader');
      written.clear();
      if (leader) void sync();
    },
  });
  let debounce: NodeJS.Timeout | undefined;
  const unwatch = o.store.watch(() => {
    clearTimeout(debounce);
    // After the control plane rebuilt its snapshot for this batch (it watches the same store).
    debounce = setTimeout(() => void sync(), 200);
  });
  const timer = setInterval(() => void sync(), o.periodMs ?? 30_000);
  timer.unref();
  return {
    sync,
    isLeader: () => election.isLeader(),
    async close() {
      unwatch();
      clearTimeout(debounce);
      clearInterval(timer);
      await rounds.current;
      await election.stop();
    },
  };
}
