import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from './clock.ts';
import { Host } from './host.ts';
import { parseOutlierConfig } from './outlier-config.ts';
import { OutlierDetector, outlierChannel } from './outlier-detector.ts';
import { newClusterStats } from './stats.ts';
import { SharedHostCountTable } from './outlier-counts.ts';

const locality = { region: '', zone: '', subZone: '' };
function hosts(n: number): Host[] {
  return Array.from({ length: n }, (_, i) => new Host(`10.0.0.${i + 1}`, 80, { weight: 1, health: 'HEALTHY', locality, localityWeight: undefined, priority: 0, tls: undefined }));
}
function setup(json: Record<string, unknown>, n = 4) {
  const clock = new ManualClock();
  const stats = newClusterStats();
  let changes = 0;
  const cfg = parseOutlierConfig(json, "cluster 't'.outlier_detection")!;
  const od = new OutlierDetector(cfg, { clock, random: () => 0, stats, onChange: () => changes++ });
  const hs = hosts(n);
  od.setHosts(hs);
  return { clock, stats, od, hs, changes: () => changes };
}

test('consecutive 5xx ejects, ejection lasts base x count and ends at the next interval tick', () => {
  const events: unknown[] = [];
  const listen = (m: unknown) => events.push(m);
  outlierChannel.subscribe(listen);
  const { clock, stats, od, hs, changes } = setup({ consecutive_5xx: 3, interval: '1s', base_ejection_time: '5s', max_ejection_percent: 50 });
  od.record(hs[0], { kind: 'status', status: 500 });
  od.record(hs[0], { kind: 'status', status: 500 });
  assert.equal(hs[0].ejected, false);
  od.record(hs[0], { kind: 'status', status: 500 });
  assert.equal(hs[0].ejected, true);
  assert.equal(changes(), 1);
  assert.equal(stats['outlier_detection.ejections_active'], 1);
  assert.equal(stats['outlier_detection.ejections_enforced_consecutive_5xx'], 1);
  clock.advance(4000);
  assert.equal(hs[0].ejected, true);
  clock.advance(1000);
  assert.equal(hs[0].ejected, false);
  assert.equal(stats['outlier_detection.ejections_active'], 0);
  assert.deepEqual(events, [
    { cluster: '', host: '10.0.0.1:80', event: 'eject', reason: 'consecutive_5xx' },
    { cluster: '', host: '10.0.0.1:80', event: 'return' },
  ]);
  outlierChannel.unsubscribe(listen);
  // Second ejection lasts twice as long.
  for (let i = 0; i < 3; i++) od.record(hs[0], { kind: 'status', status: 503 });
  assert.equal(hs[0].ejected, true);
  clock.advance(9000);
  assert.equal(hs[0].ejected, true);
  clock.advance(1000);
  assert.equal(hs[0].ejected, false);
  od.close();
});

test('a success resets the consecutive count', () => {
  const { od, hs } = setup({ consecutive_5xx: 2, max_ejection_percent: 100 });
  od.record(hs[1], { kind: 'status', status: 500 });
  od.record(hs[1], { kind: 'status', status: 200 });
  od.record(hs[1], { kind: 'status', status: 500 });
  assert.equal(hs[1].ejected, false);
  od.close();
});

test('max_ejection_percent caps ejections (default 10% of 4 hosts = none)', () => {
  const { stats, od, hs } = setup({ consecutive_5xx: 1 });
  od.record(hs[0], { kind: 'status', status: 500 });
  assert.equal(hs[0].ejected, false);
  assert.equal(stats['outlier_detection.ejections_overflow'], 1);
  assert.equal(stats['outlier_detection.ejections_detected_consecutive_5xx'], 1);
  od.close();
});

test('gateway failures are detected but not enforced by default; local-origin failures count as 5xx unless split', () => {
  const { stats, od, hs } = setup({ consecutive_5xx: 10, consecutive_gateway_failure: 2, max_ejection_percent: 100 });
  od.record(hs[0], { kind: 'status', status: 502 });
  od.record(hs[0], { kind: 'status', status: 502 });
  assert.equal(hs[0].ejected, false);
  assert.equal(stats['outlier_detection.ejections_detected_consecutive_gateway_failure'], 1);
  const split = setup({ split_external_local_origin_errors: true, consecutive_local_origin_failure: 2, max_ejection_percent: 100 });
  split.od.record(split.hs[2], { kind: 'local', failure: 'connect' });
  split.od.record(split.hs[2], { kind: 'local', failure: 'reset' });
  assert.equal(split.hs[2].ejected, true);
  assert.equal(split.stats['outlier_detection.ejections_enforced_consecutive_local_origin_failure'], 1);
  od.close();
  split.od.close();
});

test('success rate ejects the outlier host at the interval', () => {
  const { clock, od, hs, stats } = setup({ consecutive_5xx: 1000, success_rate_minimum_hosts: 5, success_rate_request_volume: 10, interval: '1s', max_ejection_percent: 50 }, 6);
  for (const h of hs) for (let i = 0; i < 20; i++) od.record(h, { kind: 'status', status: h === hs[5] ? (i % 2 ? 500 : 200) : 200 });
  clock.advance(1000);
  assert.equal(hs[5].ejected, true);
  assert.equal(stats['outlier_detection.ejections_enforced_success_rate'], 1);
  assert.ok(hs.slice(0, 5).every((h) => !h.ejected));
  od.close();
});

test('failure percentage: detected by default, ejected when enforced', () => {
  const run = (enforcing: number | undefined) => {
    const t = setup({ consecutive_5xx: 1000, failure_percentage_minimum_hosts: 2, failure_percentage_request_volume: 10, interval: '1s', max_ejection_percent: 50, ...(enforcing === undefined ? {} : { enforcing_failure_percentage: enforcing }) }, 4);
    for (const h of t.hs) for (let i = 0; i < 10; i++) t.od.record(h, { kind: 'status', status: h === t.hs[1] && i < 9 ? 503 : 200 });
    t.clock.advance(1000);
    t.od.close();
    return t;
  };
  const detectOnly = run(undefined);
  assert.equal(detectOnly.hs[1].ejected, false);
  assert.equal(detectOnly.stats['outlier_detection.ejections_detected_failure_percentage'], 1);
  const enforced = run(100);
  assert.equal(enforced.hs[1].ejected, true);
  assert.equal(enforced.stats['outlier_detection.ejections_enforced_failure_percentage'], 1);
});

test('an enforced ejection is announced; a peer worker\'s ejection is applied for the same time without counting in this worker\'s stats', () => {
  const clock = new ManualClock();
  const cfg = parseOutlierConfig({ consecutive_5xx: 2, interval: '1s', base_ejection_time: '3s', max_ejection_percent: 50 }, "cluster 't'.outlier_detection")!;
  const announced: string[] = [];
  const aStats = newClusterStats();
  const bStats = newClusterStats();
  const a = new OutlierDetector(cfg, { clock, random: () => 0, stats: aStats, onChange: () => {}, onEject: (host, reason) => announced.push(`${host} ${reason}`) });
  let bChanges = 0;
  const bAnnounced: string[] = [];
  const b = new OutlierDetector(cfg, { clock, random: () => 0, stats: bStats, onChange: () => bChanges++, onEject: (host) => bAnnounced.push(host) });
  const ha = hosts(4);
  const hb = hosts(4);
  a.setHosts(ha);
  b.setHosts(hb);
  a.record(ha[1], { kind: 'status', status: 500 });
  a.record(ha[1], { kind: 'status', status: 500 });
  assert.deepEqual(announced, ['10.0.0.2:80 consecutive_5xx']);
  b.ejectFromPeer('10.0.0.2:80', 'consecutive_5xx');
  assert.equal(hb[1].ejected, true);
  assert.equal(bChanges, 1, 'the peer rebuilds its host selection');
  assert.equal(bStats['outlier_detection.ejections_active'], 0, 'counted once, by the worker that enforced it (the primary sums workers)');
  assert.equal(bStats['outlier_detection.ejections_enforced_total'], 0);
  assert.equal(aStats['outlier_detection.ejections_active'], 1);
  b.ejectFromPeer('10.0.0.2:80', 'consecutive_5xx');
  b.ejectFromPeer('10.9.9.9:80', 'consecutive_5xx');
  assert.equal(hb[1].numEjections, 1, 'a repeated or unknown announcement changes nothing');
  // The peer's max_ejection_percent counts hosts ejected by anyone.
  b.record(hb[2], { kind: 'status', status: 500 });
  b.record(hb[2], { kind: 'status', status: 500 });
  b.record(hb[3], { kind: 'status', status: 500 });
  b.record(hb[3], { kind: 'status', status: 500 });
  assert.equal(hb[2].ejected, true);
  assert.equal(hb[3].ejected, false, '3 of 4 would exceed 50%');
  assert.deepEqual(bAnnounced, ['10.0.0.3:80'], 'only its own enforcement is announced, never the peer\'s again');
  clock.advance(3000);
  assert.equal(hb[1].ejected, false, 'returns after the same base ejection time');
  assert.equal(ha[1].ejected, false);
  a.close();
  b.close();
});

test('two workers\' detectors over shared consecutive counters eject at the proxy-wide threshold; a success anywhere resets it', () => {
  const clock = new ManualClock();
  const cfg = parseOutlierConfig({ consecutive_5xx: 3, interval: '1s', base_ejection_time: '3s', max_ejection_percent: 50 }, "cluster 't'.outlier_detection")!;
  const table = new SharedHostCountTable(new ArrayBuffer(SharedHostCountTable.bytes(2)), 0, 2);
  const provider = (column: number) => ({ counts: (i: number) => table.counts(7, i, column), hostsChanged: () => table.zeroCluster(7) });
  const a = new OutlierDetector(cfg, { clock, random: () => 0, stats: newClusterStats(), onChange: () => {}, sharedCounts: provider(0) });
  const b = new OutlierDetector(cfg, { clock, random: () => 0, stats: newClusterStats(), onChange: () => {}, sharedCounts: provider(1) });
  const ha = hosts(4);
  const hb = hosts(4);
  a.setHosts(ha);
  b.setHosts(hb);
  a.record(ha[0], { kind: 'status', status: 500 });
  b.record(hb[0], { kind: 'status', status: 500 });
  b.record(hb[0], { kind: 'status', status: 200 }); // a success in either worker resets the count
  a.record(ha[0], { kind: 'status', status: 500 });
  b.record(hb[0], { kind: 'status', status: 500 });
  assert.equal(ha[0].ejected || hb[0].ejected, false, 'two in a row so far');
  a.record(ha[0], { kind: 'status', status: 503 });
  assert.equal(ha[0].ejected, true, 'the third consecutive failure of the proxy, whichever worker saw it');
  assert.equal(table.counts(7, 0, 0)!.increment(0), 1, 'counts start over after an ejection');
  // A new host list (positions name other hosts) starts the counters over.
  table.counts(7, 1, 1)!.increment(0);
  b.setHosts(hosts(3));
  assert.equal(table.counts(7, 1, 0)!.increment(0), 1);
  a.close();
  b.close();
});
