/**
 * Istio's Bookinfo configs, unchanged from ../shared/istio-samples/, run by `trellis up --config`
 * with stand-in apps of this test's own (test/fixtures/bookinfo-standin.mjs; productpage calls out
 * with Node's fetch, reviews with node:http, both through HTTP_PROXY as `up` sets it) and
 * Workloads for them. The routing files are applied one at a time into a watched directory, as
 * Istio's tasks `kubectl apply` them, and the four behaviours that folder's README states are
 * checked through the gateway: end-user jason -> reviews v2 (others v3), 80/20 between v1 and v2,
 * HTTP 500 from ratings for jason, and a 7 s delay of ratings for jason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curl, eventually, root, trellis } from './support/trellis-up.ts';
import { sharedDir, skipUnlessShared, skipUnlessTools } from './support/skip.ts';

const samples = join(sharedDir, 'istio-samples');
const standin = join(root, 'test/fixtures/bookinfo-standin.mjs');

/** Workloads standing in for Bookinfo's Deployments (same names, labels and service accounts). */
function workloads(): string {
  const w = (app: string, version: string) => `apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata:
  name: ${app}-${version}
  labels: {app: ${app}, version: ${version}}
spec:
  command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(standin)}]
  serviceAccount: bookinfo-${app}
`;
  return [w('productpage', 'v1'), w('details', 'v1'), w('ratings', 'v1'), w('reviews', 'v1'), w('reviews', 'v2'), w('reviews', 'v3')].join('---\n');
}

interface Page {
  service?: string;
  reviews?: { status: number; body?: { version?: string; ratings?: { status: number; body?: unknown; ms: number } } };
}

describe("Istio's Bookinfo configs, unchanged, through trellis up", { skip: skipUnlessShared('istio-samples') || skipUnlessTools('curl'), timeout: 300_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'trellis-bookinfo-'));
  const routing = join(tmp, 'routing');
  const stateDir = join(tmp, 'state');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: join(tmp, 'xdg') };
  let productpage = '';

  /** Makes the routing directory hold exactly these sample files (as kubectl apply/delete would). */
  function applyRouting(...files: string[]): void {
    for (const f of readdirSync(routing)) if (!files.includes(f)) rmSync(join(routing, f));
    for (const f of files) copyFileSync(join(samples, f), join(routing, f));
  }

  const page = async (user?: string): Promise<{ status: number; page: Page; ms: number }> => {
    const r = await curl(productpage, user !== undefined ? { 'end-user': user } : {}, 30);
    let p: Page = {};
    try {
      p = JSON.parse(r.body) as Page;
    } catch {
      // not JSON: the status says why
    }
    return { status: r.status, page: p, ms: r.ms };
  };
  const reviewsVersion = async (user?: string) => (await page(user)).page.reviews?.body?.version;

  before(async () => {
    mkdirSync(routing);
    mkdirSync(join(tmp, 'workloads'));
    writeFileSync(join(tmp, 'workloads/bookinfo-workloads.yaml'), workloads());
    const args = ['up', '--detach', '--gateway-port', '0', '--state-dir', stateDir,
      '--config', join(samples, 'bookinfo.yaml'), '--config', join(samples, 'bookinfo-gateway.yaml'),
      '--config', join(samples, 'destination-rule-all.yaml'), '--config', routing, '--config', join(tmp, 'workloads')];
    const up = await trellis(args, { cwd: tmp, env, timeoutMs: 120_000 });
    assert.equal(up.code, 0, up.stdout + up.stderr);
    // The summary suggests the gateway's first route, Bookinfo's /productpage (not a 404 on /).
    const m = /^try: {3}curl (http:\/\/127\.0\.0\.1:\d+\/productpage)$/m.exec(up.stdout);
    assert.ok(m !== null, up.stdout);
    productpage = m[1];
    assert.match(up.stdout, /curl http:\/\/127\.0\.0\.1:\d+\/api\/v1\/products/);
  });

  after(async () => {
    await trellis(['down', '--state-dir', stateDir], { env });
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the page comes through the gateway from productpage, details and reviews', async () => {
    const r = await page();
    assert.equal(r.status, 200);
    assert.equal(r.page.service, 'productpage');
    assert.equal(r.page.reviews?.status, 200);
  });

  test('virtual-service-reviews-jason-v2-v3.yaml: end-user jason gets reviews v2, everyone else v3', async () => {
    applyRouting('virtual-service-reviews-jason-v2-v3.yaml');
    // Three agreeing samples in a row: replacing the routing files passes through a moment with no
    // VirtualService (round robin over v1-v3), where one sample can agree by chance.
    assert.ok(await eventually(10_000, async () => (await reviewsVersion('jason')) === 'v2' && (await reviewsVersion()) === 'v3', 3), 'routing applied');
    for (let i = 0; i < 20; i++) {
      assert.equal(await reviewsVersion('jason'), 'v2');
      assert.equal(await reviewsVersion(i % 2 === 0 ? undefined : 'alice'), 'v3');
    }
  });

  test('virtual-service-reviews-80-20.yaml: 80% of reviews traffic to v1, 20% to v2', async () => {
    applyRouting('virtual-service-reviews-80-20.yaml');
    assert.ok(await eventually(10_000, async () => (await reviewsVersion('jason')) !== 'v3' && (await reviewsVersion()) !== 'v3', 3), 'routing applied');
    const counts: Record<string, number> = {};
    const n = 200;
    for (let i = 0; i < n; i++) {
      const v = (await reviewsVersion()) ?? 'error';
      counts[v] = (counts[v] ?? 0) + 1;
    }
    // Binomial(200, 0.8): standard deviation 5.7 requests; +-20 is more than 3 of them.
    assert.deepEqual(Object.keys(counts).sort(), ['v1', 'v2'], JSON.stringify(counts));
    assert.ok(Math.abs(counts.v1 - 160) <= 20, JSON.stringify(counts));
  });

  test('virtual-service-ratings-test-abort.yaml: ratings answers jason with HTTP 500', async () => {
    // As Istio's fault-injection task: jason's reviews are v2 (which calls ratings), everyone else's v1.
    applyRouting('virtual-service-reviews-test-v2.yaml', 'virtual-service-ratings-test-abort.yaml');
    const ratingsStatus = async (user?: string) => (await page(user)).page.reviews?.body?.ratings?.status;
    assert.ok(await eventually(10_000, async () => (await ratingsStatus('jason')) === 500), 'fault applied');
    for (let i = 0; i < 10; i++) {
      const r = await page('jason');
      assert.equal(r.status, 200, 'productpage itself still answers');
      assert.equal(r.page.reviews?.body?.version, 'v2');
      assert.equal(r.page.reviews?.body?.ratings?.status, 500);
      assert.equal(await reviewsVersion(), 'v1', 'other users see reviews v1, which does not call ratings');
    }
  });

  test('virtual-service-ratings-test-delay.yaml: ratings answers jason after 7 s', async () => {
    applyRouting('virtual-service-reviews-test-v2.yaml', 'virtual-service-ratings-test-delay.yaml');
    const ratings = async () => (await page('jason')).page.reviews?.body?.ratings;
    assert.ok(await eventually(20_000, async () => ((await ratings())?.ms ?? 0) >= 7000), 'delay applied');
    const r = await ratings();
    assert.equal(r?.status, 200);
    assert.ok(r!.ms >= 7000 && r!.ms < 15_000, `ratings took ${r!.ms} ms`);
    const other = await page();
    assert.equal(other.page.reviews?.body?.version, 'v1');
    assert.ok(other.ms < 7000, `a user other than jason waits ${other.ms} ms`);
  });
});
