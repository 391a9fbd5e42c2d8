/**
 * `npm run bench:idle` (issue 18, finding 6): what idle keep-alive connections cost a gateway in
 * memory, `trellis proxy` next to a stock Envoy 1.40 fed by the same `trellis control` and Istio
 * YAML (test/support/gateway-pair.ts). Per repetition and connection kind (HTTP/1.1 after one
 * request, connected but silent, h2c after one request) a fresh gateway pair is started; per proxy
 * (alternating which goes first): a warm-up of 100 connections opened and closed, then VmRSS of
 * the proxy's process tree (trellis's primary and workers; Envoy), N idle connections opened,
 * a settle, VmRSS again. Prints RSS growth and bytes per connection, medians over repetitions,
 * and writes bench/results/<date>-idle-connections.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanups } from '../test/support/processes.ts';
import { envoyMismatch, findTool } from '../test/support/tools.ts';
import { edgeVirtualService, startGatewayPair } from '../test/support/gateway-pair.ts';
import { openIdleConnections, treeRss, type IdleKind } from '../test/support/idle-connections.ts';
import { describeMachine } from './dataplane/machine.ts';
import { median } from './dataplane/results.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    reps: { type: 'string', default: '3' },
    kinds: { type: 'string', default: 'http1,silent,h2' },
    concurrency: { type: 'string', default: '1' },
    settle: { type: 'string', default: '3' },
    'no-envoy': { type: 'boolean' },
    label: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench:idle -- [--connections N] [--reps N] [--kinds http1,silent,h2] [--concurrency N] [--settle S] [--no-envoy] [--label NAME]
  opens --connections (5000) idle connections of each kind to a trellis gateway (--concurrency
  worker processes, default 1) and to Envoy, --reps (3) times each on a fresh pair; RSS is read
  --settle (3) seconds after the last connection is set up; --label names the results file\n`);
  process.exit(0);
}
const count = Number(values.connections);
const reps = Number(values.reps);
const kinds = values.kinds.split(',').map((k) => k.trim()) as IdleKind[];
for (const k of kinds) if (!['http1', 'silent', 'h2'].includes(k)) throw new Error(`unknown kind '${k}' (http1, silent, h2)`);
const concurrency = Number(values.concurrency);
const settleMs = Number(values.settle) * 1000;
const withEnvoy = values['no-envoy'] !== true && envoyMismatch() === undefined;
if (!withEnvoy && values['no-envoy'] !== true) process.stderr.write(`bench:idle: no Envoy (${envoyMismatch()}): trellis only\n`);

interface Run {
  proxy: string;
  kind: IdleKind;
  rep: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  growthBytes: number;
  bytesPerConnection: number;
  /** Connections still open when RSS was read (the rest failed or were closed by the proxy). */
  open: number;
  failed: number;
  /** Resident memory per process of the tree, after. */
  processes: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The median of a few reads a moment apart: RSS moves while the allocator settles. */
async function steadyRss(pid: number): Promise<{ total: number; processes: number }> {
  const reads: number[] = [];
  let processes = 0;
  for (let i = 0; i < 5; i++) {
    const r = treeRss(pid);
    reads.push(r.total);
    processes = Object.keys(r.byPid).length;
    await sleep(200);
  }
  return { total: median(reads), processes };
}
const mb = (b: number) => (b / 2 ** 20).toFixed(1);

const runs: Run[] = [];
const started = Date.now();
for (let rep = 1; rep <= reps; rep++) {
  for (const kind of kinds) {
    const cleanups = new Cleanups();
    const stop = () => void cleanups.run().then(() => process.exit(130));
    process.once('SIGINT', stop);
    try {
      const pair = await startGatewayPair(cleanups, {
        envoy: withEnvoy,
        trellisArgs: ['--concurrency', String(concurrency)],
        files: { 'vs.yaml': edgeVirtualService('  - route: [{destination: {host: backend.default.svc.cluster.local, port: {number: 8080}}}]\n') },
      });
      const proxies: [string, number, number][] = [['trellis', pair.trellis.port, pair.trellis.child.pid!]];
      if (pair.envoy) proxies.push(['envoy', pair.envoy.port, pair.envoy.child.pid!]);
      if (rep % 2 === 0) proxies.reverse();
      for (const [proxy, port, pid] of proxies) {
        const warm = await openIdleConnections({ port, count: 100, kind, deadline: Date.now() + 30_000 });
        warm.close();
        await sleep(1000);
        const before = await steadyRss(pid);
        const idle = await openIdleConnections({ port, count, kind, deadline: Date.now() + 120_000 });
        await sleep(settleMs);
        const after = await steadyRss(pid);
        const open = idle.open;
        idle.close();
        const growth = after.total - before.total;
        const run: Run = {
          proxy, kind, rep, rssBeforeBytes: before.total, rssAfterBytes: after.total, growthBytes: growth,
          bytesPerConnection: open > 0 ? growth / open : NaN, open, failed: idle.failed, processes: after.processes,
        };
        runs.push(run);
        process.stdout.write(`rep ${rep} ${kind.padEnd(6)} ${proxy.padEnd(7)}: RSS ${mb(before.total)} -> ${mb(after.total)} MB (+${mb(growth)} MB, ${run.bytesPerConnection.toFixed(0)} B/conn) with ${open} idle of ${count}${idle.failed ? `, ${idle.failed} failed` : ''}; ${after.processes} process(es)\n`);
        await sleep(1000);
      }
    } finally {
      process.off('SIGINT', stop);
      await cleanups.run();
    }
  }
}

const summary = kinds.flatMap((kind) => [...new Set(runs.map((r) => r.proxy))].map((proxy) => {
  const mine = runs.filter((r) => r.proxy === proxy && r.kind === kind);
  return {
    proxy, kind,
    growthMB: median(mine.map((r) => r.growthBytes)) / 2 ** 20,
    bytesPerConnection: median(mine.map((r) => r.bytesPerConnection)),
    open: median(mine.map((r) => r.open)),
    reps: mine.length,
  };
}));
process.stdout.write(`\n${count} idle connections, medians over ${reps} reps (trellis --concurrency ${concurrency})\nkind    proxy    RSS growth  bytes/conn  open\n`);
for (const s of summary) {
  process.stdout.write(`${s.kind.padEnd(7)} ${s.proxy.padEnd(8)} ${s.growthMB.toFixed(1).padStart(7)} MB ${s.bytesPerConnection.toFixed(0).padStart(10)} ${String(s.open).padStart(6)}\n`);
}
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().slice(0, 10)}-idle-connections${values.label ? `-${values.label}` : ''}.json`);
writeFileSync(file, JSON.stringify({
  machine: describeMachine({}, findTool('envoy'), process.execPath),
  settings: { connections: count, reps, kinds, concurrency, settleSeconds: settleMs / 1000, seconds: Math.round((Date.now() - started) / 1000) },
  summary, runs,
}, null, 2) + '\n');
process.stdout.write(`\nwrote ${file}\n`);
