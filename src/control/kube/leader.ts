/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the
 * holder renews every `renewMs`; a candidate takes the lease once `leaseDurationSeconds` passed
 * since the last renewal; every write carries the resourceVersion read, so two candidates never
 * both win (the loser gets 409). A leader that cannot renew within the lease duration steps down
 * before anyone else can take over, and a leader that stops releases the lease at once.
 */
import { apiStatus } from '../../config/store/kubernetes-rest.ts';
import type { KubeRest } from '../../config/store/kubernetes-rest.ts';

interface Lease {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** MicroTime as the Lease API writes it. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '000Z');
}

export interface LeaderElection {
  isLeader(): boolean;
  stop(): Promise<void>;
}

/** Competes for `name` in `namespace`; calls onChange(true/false) as leadership comes and goes. */
export function startLeaderElection(o: {
  rest: KubeRest;
  namespace: string;
  name: string;
  identity: string;
  leaseSeconds?: number;
  renewMs?: number;
  onChange: (leader: boolean) => void;
}): LeaderElection {
  const leaseSeconds = o.leaseSeconds ?? 15;
  const renewMs = o.renewMs ?? 2000;
  const coll = `/apis/coordination.k8s.io/v1/namespaces/${o.namespace}/leases`;
  let leader = false;
  let lastRenew = 0;
  let stopped = false;
  const set = (v: boolean): void => {
    if (v === leader) return;
    leader = v;
    o.onChange(v);
  };
  const spec = (prev: Lease['spec'], now: number) => ({
    holderIdentity: o.identity,
    leaseDurationSeconds: leaseSeconds,
    acquireTime: prev?.holderIdentity === o.identity && prev.acquireTime ? prev.acquireTime : microTime(now),
    renewTime: microTime(now),
    leaseTransitions: (prev?.leaseTransitions ?? 0) + (prev?.holderIdentity === o.identity ? 0 : 1),
  });
  const attempt = async (): Promise<void> => {
    const now = Date.now();
    let lease: Lease | undefined;
    try {
      lease = await o.rest.request<Lease>('GET', `${coll}/${o.name}`, { timeoutMs: renewMs * 2 });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
    if (lease === undefined) {
      await o.rest.request('POST', coll, { body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: o.name, namespace: o.namespace }, spec: spec(undefined, now) } });
      lastRenew = now;
      set(true);
      return;
    }
    const held = lease.spec?.holderIdentity;
    const renewed = Date.parse(lease.spec?.renewTime ?? '') || 0;
    const expired = renewed + (lease.spec?.leaseDurationSeconds ?? leaseSeconds) * 1000 < now;
    if (held && held !== o.identity && !expired) {
      set(false);
      return;
    }
    await o.rest.request('PUT', `${coll}/${o.name}`, { body: { ...lease, spec: spec(lease.spec, now) }, timeoutMs: renewMs * 2 });
    lastRenew = now;
    set(true);
  };
  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        await attempt();
      } catch {
        // 409 (someone else won), or the API server is unreachable: fall through to the check.
      }
      // Step down before another candidate could take over.
      if (leader && Date.now() - lastRenew > leaseSeconds * 1000 * 0.8) set(false);
      await new Promise((r) => setTimeout(r, renewMs));
    }
  };
  void loop();
  return {
    isLeader: () => leader,
    async stop() {
      stopped = true;
      if (!leader) return;
      set(false);
      try {
        const lease = await o.rest.request<Lease>('GET', `${coll}/${o.name}`);
        if (lease.spec?.holderIdentity === o.identity) {
          await o.rest.request('PUT', `${coll}/${o.name}`, { body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } } });
        }
      } catch {
        // best effort: the lease expires on its own
      }
    },
  };
}
