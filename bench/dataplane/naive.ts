/**
 * The `naive-node` path (issue 16): bench/naive/naive-node-proxy.mjs, the smallest keep-alive
 * Node.js proxy, on the same Node 24 as Trellis, one process, with the heap probe like Trellis.
 * It is the floor Node itself sets: Trellis's target is 80% of its requests per CPU-second.
 */
import { join } from 'node:path';
import type { SetupContext } from './context.ts';
import { PlainHost } from './context.ts';
import { heapProbe } from './heap.ts';
import type { PathDef } from './paths.ts';
import { freePort, waitFor200 } from './paths.ts';
import { logTail, startProc } from './procs.ts';

/** Starts the naive Node.js proxy when `naive-node` is among `ids`. */
export async function setupNaive(ids: readonly string[], ctx: SetupContext): Promise<PathDef[]> {
  if (!ids.includes('naive-node')) return [];
  const def: PathDef = { id: 'naive-node', family: 'naive-node', hops: 1, tls: false, concurrency: 1, url: '', host: PlainHost, pgids: [], proxies: 1 };
  const front = await freePort();
  const heapDir = join(ctx.workDir, 'heap', def.id);
  const probe = heapProbe(ctx.root, heapDir);
  const p = startProc(def.id, join(ctx.root, 'node_modules/.bin/node'), [...probe.nodeArgs, join(ctx.root, 'bench/naive/naive-node-proxy.mjs'), String(front), String(ctx.upstreamPort)], { logDir: ctx.logDir, env: probe.env });
  def.pgids = [p.pid];
  def.heapDirs = [heapDir];
  def.url = `http://127.0.0.1:${front}/`;
  const ready = await waitFor200(def.url, def.host, 15000, () => p.exitCode === undefined);
  if (!ready.ok) def.unavailable = `naive-node did not answer 200 (last ${ready.last}): ${logTail(p, 300).replace(/\s+/g, ' ')}`;
  return [def];
}
