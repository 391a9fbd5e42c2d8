/**
 * The differential rig: three echo backends, one in-process ADS server (our real
 * `createXdsServer`) and two proxies connected to it — stock Envoy and `trellis proxy` — each on
 * its own listener port but with the same clusters and the same RouteConfiguration. `setTable`
 * swaps the route table and returns once both proxies serve it (checked through a probe vhost
 * whose direct response names the table), failing fast with the NACK when a proxy rejects it.
 * The raw differential gives each proxy its own recording backends (so what reached a backend is
 * known per proxy), the HttpConnectionManager our control plane generates, and restarts
 * `trellis proxy` when an input killed it.
 */
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createXdsServer, type XdsServer } from '../../src/control/xds/server.ts';
import { generatorCache } from '../../src/control/xds/testdata/resource-sets.ts';
import { startEchoServer } from '../../src/samples/echo-server.ts';
import type { XdsJson } from '../../src/xds/types.ts';
import { Cleanups, freePort, nodeBin, repoRoot, spawnTracked, startEnvoy, tempDir, waitFor, type Spawned } from '../support/processes.ts';
import { send } from './client.ts';
import { CLUSTERS, PROBE_DOMAIN, withProbe, type Json } from './generate.ts';
import { resourceSetFor } from './resources.ts';

export const ENVOY_NODE = 'router~127.0.0.1~envoy-diff.default~default.svc.cluster.local';
export const TRELLIS_NODE = 'router~127.0.0.1~trellis-diff.default~default.svc.cluster.local';

/** What the rig is built with; the defaults are the route-table differential's. */
export interface RigOptions {
  /** Cluster name -> backend port for each proxy; default: shared echo backends for CLUSTERS. */
  readonly backends?: { readonly envoy: ReadonlyMap<string, number>; readonly trellis: ReadonlyMap<string, number> };
  /** The listener's HttpConnectionManager typed_config; default: RDS + router only. */
  readonly hcm?: XdsJson;
}

/** A running rig. */
export interface Rig {
  readonly envoyPort: number;
  readonly trellisPort: number;
  readonly envoyAgent: http.Agent;
  readonly trellisAgent: http.Agent;
  readonly xds: XdsServer;
  readonly envoy: Spawned;
  /** The current `trellis proxy` process (replaced by `restartTrellis`). */
  readonly trellis: Spawned;
  /** Starts a fresh `trellis proxy` (after an input killed it) and waits until it serves the current table. */
  restartTrellis(): Promise<void>;
  /** Serves `config` (a generated table) on both proxies; resolves when both answer the probe with `tableId`. */
  setTable(config: Json, tableId: string): Promise<void>;
}

/** Starts backends, the ADS server and both proxies; everything is registered with `cleanups`. */
export async function startRig(cleanups: Cleanups, opts: RigOptions = {}): Promise<Rig> {
  let backendsOf = opts.backends;
  if (backendsOf === undefined) {
    const shared = new Map<string, number>();
    for (const name of CLUSTERS) {
      const srv = await startEchoServer({ namespace: 'diff', service: name, pod: `${name}-pod`, host: '127.0.0.1', port: 0, log: () => {} });
      cleanups.add(() => srv.close());
      shared.set(name, srv.port);
    }
    backendsOf = { envoy: shared, trellis: shared };
  }
  const envoyPort = await freePort();
  const trellisPort = await freePort();
  const perNode = new Map([[ENVOY_NODE, { port: envoyPort, backends: backendsOf.envoy }], [TRELLIS_NODE, { port: trellisPort, backends: backendsOf.trellis }]]);
  let routeConfig: XdsJson = withProbe({ name: 'diff-routes', virtual_hosts: [] }, 'initial');
  const gen = generatorCache((proxy) => {
    const n = perNode.get(proxy.id);
    return resourceSetFor(n?.port ?? 1, n?.backends ?? new Map(), routeConfig, opts.hcm);
  });
  const xds = createXdsServer({ debounceMs: 5, maxDelayMs: 50, cache: gen.cache });
  const xdsPort = await xds.listen();
  cleanups.add(() => xds.close(500));

  const dir = tempDir(cleanups, 'trellis-diff-');
  const envoy = await startEnvoy(cleanups, { xdsPort, nodeId: ENVOY_NODE, metadata: {}, dir, logLevel: 'warning' });
  let starts = 0;
  const spawnTrellis = () => spawnTrellisProxy(cleanups, xdsPort, TRELLIS_NODE, join(dir, `trellis-${starts++}.ready`));
  let trellis = await spawnTrellis();

  const envoyAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const trellisAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  cleanups.add(() => {
    envoyAgent.destroy();
    trellisAgent.destroy();
  });

  const nackOf = (): string | undefined => {
    for (const s of xds.status()) {
      for (const t of Object.values(s.types)) if (t.state === 'NACKED') return `${s.id} NACKed ${t.typeUrl} version ${t.nackVersion}: ${t.nackError}`;
    }
    return undefined;
  };
  const probe = async (port: number, agent: http.Agent): Promise<string | undefined> => {
    const o = await send(port, { method: 'GET', authority: PROBE_DOMAIN, path: '/', headers: [] }, agent, 2000);
    return o.status === 200 ? o.body : undefined;
  };

  const setTable = async (config: Json, tableId: string): Promise<void> => {
    routeConfig = withProbe(config, tableId);
    gen.push({ reason: `table ${tableId}` });
    await xds.flush();
    await waitFor(`both proxies serving table ${tableId}`, async () => {
      const nack = nackOf();
      if (nack !== undefined) throw new NackError(nack);
      const [a, b] = await Promise.all([probe(envoyPort, envoyAgent), probe(trellisPort, trellisAgent)]);
      return a === tableId && b === tableId;
    }, 15_000, 20).catch((err: unknown) => {
      const nack = nackOf();
      throw nack !== undefined ? new NackError(nack) : err;
    });
  };

  const restartTrellis = async (): Promise<void> => {
    await trellis.stop(1000);
    trellisAgent.destroy();
    trellis = await spawnTrellis();
    const id = `restart-${starts}`;
    routeConfig = withProbe({ ...routeConfig, virtual_hosts: (routeConfig.virtual_hosts as Json[]).filter((v) => !(v.domains as string[]).includes(PROBE_DOMAIN)) }, id);
    gen.push({ reason: `trellis restart ${id}` });
    await xds.flush();
    await waitFor(`restarted trellis proxy serving ${id}`, async () => (await probe(trellisPort, trellisAgent)) === id, 15_000, 20);
  };

  await setTable({ name: 'diff-routes', virtual_hosts: [] }, 'warmup');
  return {
    envoyPort, trellisPort, envoyAgent, trellisAgent, xds, envoy, setTable, restartTrellis,
    get trellis() {
      return trellis;
    },
  };
}

/** Spawns `trellis proxy` (one worker, ephemeral admin ports) against an ADS server; resolves once it is ready. */
export async function spawnTrellisProxy(cleanups: Cleanups, xdsPort: number, nodeId: string, readyFile: string): Promise<Spawned> {
  const p = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin', 'trellis.js'), 'proxy', '--xds', `127.0.0.1:${xdsPort}`, '--kind', 'router',
    '--node-id', nodeId, '--concurrency', '1', '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0', '--ready-file', readyFile,
    '--log-level', 'warn', '--drain-timeout', '1s'], { cwd: repoRoot });
  await waitFor('trellis proxy ready file', async () => {
    if (p.child.exitCode !== null) throw new Error(`trellis proxy exited:\n${p.output()}`);
    return existsSync(readyFile) && readFileSync(readyFile, 'utf8').length > 0;
  }, 30_000);
  return p;
}

/** A proxy rejected a generated table. */
export class NackError extends Error {}
