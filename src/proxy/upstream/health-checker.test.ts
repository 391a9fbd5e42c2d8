import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../../errors.ts';
import { ManualClock } from './clock.ts';
import { createClusterManager } from './cluster-manager.ts';
import { get, h1Backend, staticCluster } from './test-support.ts';

async function until(cond: () => boolean, what: string): Promise<void> {
  // Up to 10 s: health check rounds run late on a loaded machine.
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('active HTTP health checks keep failing hosts out and bring them back after healthy_threshold passes', async (t) => {
  let badHealthy = false;
  const good = await h1Backend('good', (req, res) => { res.end(req.url === '/healthz' ? 'ok' : 'good'); });
  const bad = await h1Backend('bad', (req, res) => {
    if (req.url === '/healthz') res.statusCode = badHealthy ? 200 : 503;
    res.end('bad');
  });
  const clock = new ManualClock();
  const cm = createClusterManager({ clock });
  // Closed even when an assertion fails: open servers would keep the file from ever exiting.
  t.after(async () => {
    await cm.close();
    await good.close();
    await bad.close();
  });
  cm.update([staticCluster('hc', [good.port, bad.port], {
    health_checks: [{ timeout: '1s', interval: '10s', unhealthy_threshold: 2, healthy_threshold: 2, http_health_check: { path: '/healthz' } }],
  })], new Map());
  const flags = () => cm.status()[0].hosts.map((h) => h.healthFlags);
  // A new host needs a single pass (Envoy), so the failing one is out and the passing one in at once.
  await until(() => flags()[0] === 'healthy' && flags()[1] === '/failed_active_hc', 'first round');
  for (let i = 0; i < 4; i++) assert.equal((await get(cm.get('hc')!)).body, 'good');
  badHealthy = true;
  clock.advance(10_000);
  await until(() => flags()[1] === 'healthy', 'the first pass of a host that never passed');
  badHealthy = false;
  clock.advance(10_000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(flags()[1], 'healthy', 'one failure is below unhealthy_threshold 2');
  clock.advance(10_000);
  await until(() => flags()[1] === '/failed_active_hc', 'second failure');
  badHealthy = true;
  clock.advance(10_000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(flags()[1], '/failed_active_hc', 'one pass is below healthy_threshold 2');
  clock.advance(10_000);
  await until(() => flags()[1] === 'healthy', 'second pass');
});

test('TCP health check marks a closed port failed', async () => {
  const good = await h1Backend('good');
  const cm = createClusterManager({ clock: new ManualClock() });
  cm.update([staticCluster('hc', [good.port, 1], {
    health_checks: [{ timeout: '0.5s', interval: '10s', unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} }],
  })], new Map());
  await until(() => cm.status()[0].hosts[0].healthFlags === 'healthy', 'good host passes');
  assert.equal(cm.status()[0].hosts[1].healthFlags, '/failed_active_hc');
  assert.equal(cm.status()[0].stats.membership_healthy, 1);
  await cm.close();
  await good.close();
});

test('invalid health_checks are rejected', () => {
  const cm = createClusterManager();
  const cases: [unknown, RegExp][] = [
    [[{ interval: '1s', unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} }], /health_checks\[0\].timeout: required/],
    [[{ timeout: '1s', interval: '1s', unhealthy_threshold: 1, healthy_threshold: 1, grpc_health_check: {} }], /only http_health_check and tcp_health_check/],
    [[{ timeout: '1s', interval: '1s', unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: 'x' } }], /path: required, starting with \//],
    [[{ timeout: '1s', interval: '1s', healthy_threshold: 1, tcp_health_check: {} }], /unhealthy_threshold: required/],
  ];
  for (const [hc, re] of cases) {
    assert.throws(() => cm.update([staticCluster('c', [1], { health_checks: hc })], new Map()), (err: unknown) => hasCode(err, 'XDS_INVALID') && re.test((err as Error).message));
  }
});
