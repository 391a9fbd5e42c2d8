/**
 * What service names mean to the transparent-mode DNS responder: the runtime's own watched view of
 * the config directories the control plane serves, turned into the same service registry (with
 * the same VIP auto-allocation, src/registry/vip.ts, so DNS and the sidecars' VIP filter chains
 * always agree). Names resolve as from the asking workload's namespace, with the Kubernetes
 * search-path forms (`svc`, `svc.ns`, `svc.ns.svc`, FQDN) the registry's lookupHost understands.
 * The registry is rebuilt lazily on the first query after a config change. Config goes through
 * the control plane's config gate, so a service whose definition broke keeps its name as proxies
 * keep its routes (last-known-good).
 */
import { openFileStore } from '../../config/store/file.ts';
import { CompositeStore } from '../../config/store/composite.ts';
import type { ConfigStore } from '../../config/store/types.ts';
import { ConfigGate } from '../../control/config-gate.ts';
import { buildRegistry } from '../../registry/registry.ts';
import type { ServiceRegistry } from '../../registry/types.ts';
import type { DnsResolve } from './responder.ts';

export interface MeshNames {
  readonly resolve: DnsResolve;
  /** The registry names resolve against (current config). */
  registry(): ServiceRegistry;
  close(): Promise<void>;
}

/** Watches `configDirs`; `namespaceOf(clientIp)` names the asking workload's namespace (default `default`). */
export async function openMeshNames(configDirs: readonly string[], namespaceOf: (ip: string) => string | undefined): Promise<MeshNames> {
  const stores = await Promise.all(configDirs.map((d) => openFileStore(d, { onError: () => {} })));
  const store: ConfigStore = stores.length === 1 ? stores[0] : new CompositeStore(stores.map((s, i) => ({ store: s, name: configDirs[i] })));
  await store.ready();
  const gate = new ConfigGate(store);
  gate.update();
  let current: ServiceRegistry | undefined;
  // The gate follows every change (it must see a version to keep it); the registry is rebuilt lazily.
  const follow = (): void => {
    if (gate.update().changed.length > 0) current = undefined;
  };
  const offs = [store.watch(follow), store.watchDiagnostics(follow)];
  const registry = () => (current ??= buildRegistry({ list: (t, ns) => gate.list(t, ns) }, { autoAllocateVips: true }));
  return {
    registry,
    resolve(name, client) {
      if (name === '' || name.endsWith('.')) return undefined;
      const svc = registry().lookupHost(name, namespaceOf(client) ?? 'default');
      return svc === undefined ? undefined : svc.addresses;
    },
    async close() {
      for (const off of offs) off();
      await store.close();
    },
  };
}
