/**
 * The process the HTTP fuzz pass aims at: a real `trellis proxy` fed by our ADS server with the
 * raw differential's gateway listener and route table, in front of recording backends, plus the
 * canary requests (HTTP/1.1 and h2c) that must keep succeeding between batches, and a restart for
 * when an input killed it.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { join } from 'node:path';
import { createXdsServer } from '../../src/control/xds/server.ts';
import { generatorCache } from '../../src/control/xds/testdata/resource-sets.ts';
import { freePort, tempDir, type Cleanups, type Spawned } from '../support/processes.ts';
import { spawnTrellisProxy } from '../differential/harness.ts';
import { withProbe } from '../differential/generate.ts';
import { resourceSetFor } from '../differential/resources.ts';
import { RAW_CLUSTERS, RAW_TABLE, rawHcm } from '../differential/raw-table.ts';
import { startRecorder } from '../differential/recorder.ts';

/** A running fuzz target. */
export interface ProxyTarget {
  readonly port: number;
  readonly proxy: Spawned;
  alive(): boolean;
  /** A plain GET over HTTP/1.1 and over h2c; resolves with what went wrong, or undefined when both got 200. */
  canary(): Promise<string | undefined>;
  restart(): Promise<void>;
}

function h1Canary(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/b/canary', headers: { host: 'diff.example', 'x-case': 'canary' }, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? undefined : `HTTP/1.1 canary got ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 5 s')));
    req.on('error', (err) => resolve(`HTTP/1.1 canary failed: ${err.message}`));
    req.end();
  });
}

function h2Canary(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      resolve('h2c canary timed out after 5 s');
    }, 5000);
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      session.close();
      resolve(v);
    };
    session.on('error', (err) => done(`h2c canary failed: ${err.message}`));
    const st = session.request({ ':path': '/b/canary', ':authority': 'diff.example', 'x-case': 'canary' });
    st.on('response', (h) => {
      st.resume();
      st.on('end', () => done(h[':status'] === 200 ? undefined : `h2c canary got ${h[':status']}`));
    });
    st.on('error', (err) => done(`h2c canary failed: ${err.message}`));
    st.end();
  });
}

/** Starts backends, the ADS server and one `trellis proxy`. */
export async function startProxyTarget(cleanups: Cleanups): Promise<ProxyTarget> {
  const recorder = await startRecorder(cleanups, RAW_CLUSTERS);
  const port = await freePort();
  const routes = withProbe(RAW_TABLE, 'fuzz');
  const gen = generatorCache(() => resourceSetFor(port, recorder.ports, routes, rawHcm()));
  const xds = createXdsServer({ debounceMs: 5, maxDelayMs: 50, cache: gen.cache });
  const xdsPort = await xds.listen();
  cleanups.add(() => xds.close(500));
  const dir = tempDir(cleanups, 'trellis-fuzz-');
  let starts = 0;
  const start = async () => {
    const p = await spawnTrellisProxy(cleanups, xdsPort, 'router~127.0.0.1~fuzz.default~default.svc.cluster.local', join(dir, `ready-${starts++}`));
    // Ready means config applied; wait until the listener answers too.
    for (let i = 0; i < 100 && (await h1Canary(port)) !== undefined; i++) await new Promise((r) => setTimeout(r, 50));
    return p;
  };
  let proxy = await start();
  return {
    port,
    get proxy() {
      return proxy;
    },
    alive: () => proxy.child.exitCode === null && proxy.child.signalCode === null,
    async canary() {
      return (await h1Canary(port)) ?? (await h2Canary(port));
    },
    async restart() {
      await proxy.stop(1000);
      proxy = await start();
    },
  };
}
