/**
 * The differential rig: three echo backends, one in-process ADS server (our real
 * `createXdsServer`) and two proxies connected to it — stock Envoy and `trellis proxy` — each on
 * its own listener port but with the same clusters and the same RouteConfiguration. `setTable`
 * swaps the route table and returns once both proxies serve it (checked through a probe vhost
 * whose direct response names the table), failing fast with the NACK when a proxy rejects it.
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

/** A running rig. */
export interface Rig {
  readonly envoyPort: number;
  readonly trellisPort: number;
  readonly envoyAgent: http.Agent;
  readonly trellisAgent: http.Agent;
  readonly xds: XdsServer;
  readonly envoy: Spawned;
  readonly trellis: Spawned;
  /** Serves `config` (a generated table) on both proxies; resolves when both answer the probe with `tableId`. */
  setTable(config: Json, tableId: string): Promise<void>;
}

/** Starts backends, the ADS server and both proxies; everything is registered with `cleanups`. */
export async function startRig(cleanups: Cleanups): Promise<Rig> {
  const backends = new Map<string, number>();
  for (const name of CLUSTERS) {
    const srv = await startEchoServer({ namespace: 'diff', service: name, pod: `${name}-pod`, host: '127.0.0.1', port: 0, log: () => {} });
    cleanups.add(() => srv.close());
    backends.set(name, srv.port);
  }
  const envoyPort = await freePort();
  const trellisPort = await freePort();
  const ports = new Map([[ENVOY_NODE, envoyPort], [TRELLIS_NODE, trellisPort]]);
  let routeConfig: XdsJson = withProbe({ name: 'diff-routes', virtual_hosts: [] }, 'initial');
  const gen = generatorCache((proxy) => resourceSetFor(ports.get(proxy.id) ?? 1, backends, routeConfig));
  const xds = createXdsServer({ debounceMs: 5, maxDelayMs: 50, cache: gen.cache });
  const xdsPort = await xds.listen();
  cleanups.add(() => xds.close(500));

  const dir = tempDir(cleanups, 'trellis-diff-');
  const envoy = await startEnvoy(cleanups, { xdsPort, nodeId: ENVOY_NODE, metadata: {}, dir, logLevel: 'warning' });
  const ready = join(dir, 'trellis.ready');
  const trellis = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin', 'trellis.js'), 'proxy', '--xds', `127.0.0.1:${xdsPort}`, '--kind', 'router',
    '--node-id', TRELLIS_NODE, '--concurrency', '1', '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0', '--ready-file', ready,
    '--log-level', 'warn', '--drain-timeout', '1s'], { cwd: repoRoot });
  await waitFor('trellis proxy ready file', async () => {
    if (trellis.child.exitCode !== null) throw new Error(`trellis proxy exited:\n${trellis.output()}`);
    return existsSync(ready) && readFileSync(ready, 'utf8').length > 0;
  }, 30_000);

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

  await setTable({ name: 'diff-routes', virtual_hosts: [] }, 'warmup');
  return { envoyPort, trellisPort, envoyAgent, trellisAgent, xds, envoy, trellis, setTable };
}

/** A proxy rejected a generated table. */
export class NackError extends Error {}
