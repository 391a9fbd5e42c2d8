/**
 * `npm run bench:rapid-reset` (issue 18): normal traffic's latency with and without an HTTP/2
 * rapid-reset attack (CVE-2023-44487), through a `trellis proxy` ingress gateway and a stock
 * Envoy 1.40 fed by the same `trellis control` and Istio YAML (test/support/gateway-pair.ts).
 * Per proxy and repetition, interleaved (trellis, envoy, trellis, ...): fortio at a fixed rate
 * alone (unattacked p99), then the same fortio run while raw-frame attackers
 * (test/support/h2-rapid-reset.ts) open and cancel streams on fresh h2c connections as fast as
 * the proxy takes them (attacked p99), counting the cancelled requests that still reached the
 * backend. Prints the table and writes bench/results/<date>-rapid-reset.json. Medians over reps.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanups } from '../test/support/processes.ts';
import { envoyMismatch, findTool } from '../test/support/tools.ts';
import { edgeVirtualService, startGatewayPair } from '../test/support/gateway-pair.ts';
import { rapidReset } from '../test/support/h2-rapid-reset.ts';
import { fortioRun, type LatencyRun } from './dataplane/load.ts';
import { describeMachine } from './dataplane/machine.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    qps: { type: 'string', default: '200' },
    conns: { type: 'string', default: '4' },
    attackers: { type: 'string', default: '3' },
    'attack-rate': { type: 'string', default: '10000' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench:rapid-reset -- [--reps N] [--duration S] [--qps N] [--conns N] [--attackers N] [--attack-rate N]
  normal traffic: fortio --qps (default 200) over --conns (4) HTTP/1.1 connections for --duration seconds (8),
  alone and under --attackers (3) rapid-reset connections sending --attack-rate (10000) resets/s in all;
  --reps interleaved repetitions (3)\n`);
  process.exit(0);
}
const reps = Number(values.reps);
const duration = Number(values.duration);
const qps = Number(values.qps);
const conns = Number(values.conns);
const attackers = Number(values.attackers);
const attackRate = Number(values['attack-rate']);
const batch = 50;
// Each attacker writes `batch` HEADERS + RST_STREAM pairs, then pauses: together `attackRate` resets/s.
const pauseMs = (batch * attackers * 1000) / attackRate;

const fortio = findTool('fortio');
if (fortio === undefined) {
  process.stderr.write('bench:rapid-reset needs fortio on PATH (scripts/install-tools.sh)\n');
  process.exit(2);
}

interface Run {
  proxy: string;
  rep: number;
  unattacked: LatencyRun;
  attacked: LatencyRun;
  resets: number;
  attackConnections: number;
  /** Cancelled requests the backend received. */
  reachedBackend: number;
  reachedPerThousandResets: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const cleanups = new Cleanups();
process.once('SIGINT', () => void cleanups.run().then(() => process.exit(130)));
try {
  const pair = await startGatewayPair(cleanups, {
    envoy: envoyMismatch() === undefined,
    files: { 'vs.yaml': edgeVirtualService('  - route: [{destination: {host: backend.default.svc.cluster.local, port: {number: 8080}}}]\n') },
  });
  const proxies: [string, number][] = [['trellis', pair.trellis.port], ...(pair.envoy ? [['envoy', pair.envoy.port] as [string, number]] : [])];
  const runs: Run[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    for (const [proxy, port] of proxies) {
      const target = { url: `http://127.0.0.1:${port}/normal`, host: 'bench' };
      const unattacked = await fortioRun(fortio, target, qps, conns, duration);
      const prefix = `/attack-${proxy}-${rep}-`;
      const attack = rapidReset({ port, pathPrefix: prefix, maxResets: 50_000_000, deadline: Date.now() + (duration + 1) * 1000, batch, pauseMs, parallel: attackers });
      const attacked = await fortioRun(fortio, target, qps, conns, duration);
      const a = await attack;
      await new Promise((r) => setTimeout(r, 500));
      const reached = pair.backend.count(prefix);
      const run: Run = {
        proxy, rep, unattacked, attacked, resets: a.resets, attackConnections: a.connections, reachedBackend: reached,
        reachedPerThousandResets: a.resets > 0 ? (reached * 1000) / a.resets : 0,
      };
      runs.push(run);
      process.stdout.write(`${proxy} rep ${rep}: p99 ${unattacked.p99.toFixed(1)} ms unattacked, ${attacked.p99.toFixed(1)} ms attacked${attacked.error ? ` (${attacked.error})` : ''}; `
        + `${a.resets} resets on ${a.connections} connections, ${reached} reached the backend (${run.reachedPerThousandResets.toFixed(2)} per 1,000)\n`);
    }
  }
  const summary = proxies.map(([proxy]) => {
    const mine = runs.filter((r) => r.proxy === proxy);
    const un = median(mine.map((r) => r.unattacked.p99));
    const at = median(mine.map((r) => r.attacked.p99));
    return {
      proxy,
      p99UnattackedMs: un,
      p99AttackedMs: at,
      p99Ratio: at / un,
      resetsPerSecond: median(mine.map((r) => r.resets / duration)),
      reachedPerThousandResets: median(mine.map((r) => r.reachedPerThousandResets)),
      failedNormalRequests: mine.reduce((n, r) => n + (r.attacked.error ? 1 : 0), 0),
    };
  });
  process.stdout.write('\nproxy    p99 unattacked  p99 attacked  ratio  resets/s  cancelled at backend per 1,000 resets\n');
  for (const s of summary) {
    process.stdout.write(`${s.proxy.padEnd(8)} ${s.p99UnattackedMs.toFixed(1).padStart(10)} ms ${s.p99AttackedMs.toFixed(1).padStart(10)} ms ${s.p99Ratio.toFixed(2).padStart(6)} ${s.resetsPerSecond.toFixed(0).padStart(9)} ${s.reachedPerThousandResets.toFixed(2).padStart(10)}\n`);
  }
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-rapid-reset-${attackRate}.json`);
  writeFileSync(file, JSON.stringify({ machine: describeMachine({ fortio }, findTool('envoy'), process.execPath), settings: { reps, duration, qps, conns, attackers, attackRate }, summary, runs }, null, 2) + '\n');
  process.stdout.write(`\nwrote ${file}\n`);
} finally {
  await cleanups.run();
}
