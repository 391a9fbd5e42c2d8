/**
 * Issue 18's findings, end to end: one `trellis control` watching Istio YAML serves a `trellis
 * proxy` ingress gateway and (when `envoy` is on PATH) a stock Envoy 1.40 with Istio's bootstrap
 * runtime; raw bytes go to both and the trellis gateway must answer as Envoy does (status,
 * connection closed or kept, what reached the backend and with which path) and stay up.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cleanups, waitFor } from './support/processes.ts';
import { envoyMismatch, findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';
import { rapidReset } from './support/h2-rapid-reset.ts';
import { edgeVirtualService, exchange, startGatewayPair, type Exchange, type GatewayPair } from './support/gateway-pair.ts';

const run = promisify(execFile);
const cleanups = new Cleanups();
after(() => cleanups.run());

const Backend = 'backend.default.svc.cluster.local';
// Envoy at the pinned version: compared where present; without it each case still has its expectation.
const withEnvoy = envoyMismatch() === undefined;

/** What a client and the backend saw, for comparing the two gateways. */
interface Outcome {
  statuses: number[];
  closed: boolean;
  /** Targets that reached the backend. */
  backend: string[];
}

async function outcome(pair: GatewayPair, port: number, raw: string, responses = 1): Promise<Outcome & { ex: Exchange }> {
  const before = pair.backend.hits.length;
  const ex = await exchange(port, Buffer.from(raw, 'latin1'), 3000, responses);
  // The backend may log a forwarded request a moment after the client got its answer.
  await new Promise((r) => setTimeout(r, 30));
  return { statuses: ex.statuses, closed: ex.closed, backend: pair.backend.hits.slice(before).map((h) => h.target), ex };
}

/** The trellis gateway still answers a plain request with 200. */
async function stillServing(pair: GatewayPair): Promise<void> {
  const ok = await exchange(pair.trellis.port, 'GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5000);
  assert.deepEqual(ok.statuses, [200], `trellis gateway stopped serving:\n${pair.trellis.output().slice(-2000)}`);
  assert.equal(pair.trellis.child.exitCode, null, 'trellis proxy exited');
}

/** Sends `raw` to both gateways; asserts trellis sees what Envoy sees (or `expected` without Envoy). */
async function sameAsEnvoy(pair: GatewayPair, raw: string, expected: Outcome): Promise<void> {
  const t = await outcome(pair, pair.trellis.port, raw, expected.statuses.length);
  const mine = { statuses: t.statuses, closed: t.closed, backend: t.backend };
  if (pair.envoy !== undefined) {
    const e = await outcome(pair, pair.envoy.port, raw, expected.statuses.length);
    assert.deepEqual({ statuses: e.statuses, closed: e.closed, backend: e.backend }, expected, `Envoy on ${JSON.stringify(raw)} (the expectation is wrong)`);
  }
  assert.deepEqual(mine, expected, `trellis on ${JSON.stringify(raw)}: ${JSON.stringify(t.ex.text.slice(0, 200))}`);
}

describe('issue 18 findings against a trellis gateway (and stock Envoy) from one YAML config', { timeout: 300_000 }, () => {
  let pair: GatewayPair;
  const ports = () => [pair.trellis.port, ...(pair.envoy ? [pair.envoy.port] : [])];
  before(async () => {
    pair = await startGatewayPair(cleanups, {
      envoy: withEnvoy,
      files: {
        'vs.yaml': edgeVirtualService(`  - match: [{uri: {prefix: /admin/}}]
    directResponse: {status: 403}
  - route: [{destination: {host: ${Backend}, port: {number: 8080}}}]
`),
      },
    });
  });

  test('a stock Envoy fed by the same control plane decides every case alongside', { skip: skipUnlessTools('envoy') }, () => {
    assert.ok(pair.envoy !== undefined);
  });

  test('finding 1: GET / HTTP/2.0 on an HTTP/1.1 connection gets 426, not a crash; other versions likewise', async () => {
    for (let i = 0; i < 5; i++) {
      await sameAsEnvoy(pair, 'GET /v20 HTTP/2.0\r\nHost: x\r\n\r\n', { statuses: [426], closed: true, backend: [] });
    }
    await stillServing(pair);
    for (const version of ['HTTP/1.0', 'HTTP/0.9', 'HTTP/3.0']) {
      await sameAsEnvoy(pair, `GET /v HTTP/${version.slice(5)}\r\nHost: x\r\n\r\n`, { statuses: [426], closed: true, backend: [] });
    }
    await sameAsEnvoy(pair, 'GET /\r\n\r\n', { statuses: [426], closed: true, backend: [] });
    await stillServing(pair);
  });

  test('finding 2: paths are normalized as Envoy does under MeshConfig BASE (default): same route, same forwarded path', async () => {
    // [target, what Envoy 1.40 does with BASE]: 403 from the /admin/ route, 400, or the path the backend sees.
    const cases: [string, number | string][] = [
      ['/x/../admin/secret', 403], ['/./admin/secret', 403], ['/%61dmin/secret', 403], ['/x/%2e%2e/admin/secret', 403],
      ['/x\\..\\admin/secret', 403], ['/x/..;/admin/secret', 403], ['/ADMIN/../admin/x', 403],
      // BASE does not merge slashes: `//admin` is not under /admin/ for Envoy either.
      ['//admin/secret', '//admin/secret'], ['/a//b', '/a//b'],
      ['/a/./b/../c', '/a/c'], ['/../../a', '/a'], ['/a/b/..', '/a/'], ['/%7Euser/%41%42', '/~user/AB'], ['/a%2fb', '/a%2fb'], ['/a%2F..%2Fb', '/a%2F..%2Fb'],
      ['/q?x=/../y', '/q?x=/../y'], ['/a/../b?c=%61', '/b?c=%61'], ['/p"q', '/p%22q'], ['/p{|}q', '/p%7B%7C%7Dq'], ['/a%%30%30', '/a%2500'],
      ['/a#frag', '/a'], ['/a/b?x#y/../..', '/a/b?x'], ['/a%00b', 400], ['/a/.%00', 400],
    ];
    for (const [target, want] of cases) {
      const expected: Outcome = typeof want === 'string' ? { statuses: [200], closed: false, backend: [want] }
        : { statuses: [want], closed: want === 400, backend: [] };
      await sameAsEnvoy(pair, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, expected);
    }
    await stillServing(pair);
  });

  test('finding 2: MeshConfig MERGE_SLASHES and DECODE_AND_MERGE_SLASHES (trellis control --mesh-config): all six bypasses of the /admin/ route blocked', async () => {
    const bypasses = ['/x/../admin/secret', '//admin/secret', '/./admin/secret', '/%61dmin/secret', '/x/%2e%2e/admin/secret', '/x\\..\\admin/secret'];
    // The mesh config as Istio keeps it: the istio ConfigMap's data.mesh.
    const mode = async (normalization: string, probe: string, want: number) => {
      await pair.restartControl(`apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    pathNormalization:
      normalization: ${normalization}
`);
      for (const port of ports()) {
        await waitFor(`${normalization} applied on ${port}`, async () => (await exchange(port, `GET ${probe} HTTP/1.1\r\nHost: x\r\n\r\n`)).statuses[0] === want, 60_000, 100);
      }
    };
    await mode('MERGE_SLASHES', '//admin/secret', 403);
    for (const target of bypasses) await sameAsEnvoy(pair, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, { statuses: [403], closed: false, backend: [] });
    await sameAsEnvoy(pair, 'GET /a//b///c HTTP/1.1\r\nHost: x\r\n\r\n', { statuses: [200], closed: false, backend: ['/a/b/c'] });
    await sameAsEnvoy(pair, 'GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n', { statuses: [200], closed: false, backend: ['/a%2Fb'] });
    await mode('DECODE_AND_MERGE_SLASHES', '/x%2F..%2Fadmin/secret', 403);
    for (const target of [...bypasses, '/x%2F..%2Fadmin/secret', '/%2Fadmin/secret', '/x%5C..%5Cadmin/secret']) {
      await sameAsEnvoy(pair, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, { statuses: [403], closed: false, backend: [] });
    }
    await sameAsEnvoy(pair, 'GET /a%2fb%5Cc?d=%2f HTTP/1.1\r\nHost: x\r\n\r\n', { statuses: [200], closed: false, backend: ['/a/b/c?d=%2f'] });
    // NONE: the path goes as sent (Istio documents this mode as affected by CVE-2021-31920).
    await mode('NONE', '/x/../admin/secret', 200);
    await sameAsEnvoy(pair, 'GET /x/../admin/secret HTTP/1.1\r\nHost: x\r\n\r\n', { statuses: [200], closed: false, backend: ['/x/../admin/secret'] });
    await mode('BASE', '/x/../admin/secret', 403);
    await stillServing(pair);
  });

  test('finding 3: a valid POST followed by a malformed request on one connection gets its 200 before the 400, and runs once', async () => {
    pair.backend.slowMs = 300;
    try {
      await sameAsEnvoy(pair, 'POST /post-slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\nHost x\r\n\r\n', { statuses: [200, 400], closed: true, backend: ['/post-slow'] });
      await sameAsEnvoy(pair, 'POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nBad Header: v\r\n\r\n', { statuses: [200, 200, 400], closed: true, backend: ['/post', '/ok'] });
    } finally {
      pair.backend.slowMs = 0;
    }
    await stillServing(pair);
  });

  test('finding 6: Upgrade: h2c is served over HTTP/1.1, HTTP/1.0 gets 426, a Host with / ? # \\ " { } gets 400', async () => {
    await sameAsEnvoy(pair, 'GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', { statuses: [200], closed: false, backend: ['/h2c'] });
    const hit = pair.backend.hits.findLast((h) => h.target === '/h2c');
    assert.equal(hit?.headers.upgrade, undefined, 'the upgrade is not forwarded');
    await sameAsEnvoy(pair, 'GET /old HTTP/1.0\r\n\r\n', { statuses: [426], closed: true, backend: [] });
    await sameAsEnvoy(pair, 'GET /old HTTP/1.0\r\nHost: x\r\n\r\n', { statuses: [426], closed: true, backend: [] });
    for (const host of ['x/../y', 'x?y', 'x#y', 'x\\y', 'x"y', 'x{y}']) {
      await sameAsEnvoy(pair, `GET /h HTTP/1.1\r\nHost: ${host}\r\n\r\n`, { statuses: [400], closed: true, backend: [] });
    }
    for (const host of ['x@y', 'x%20y', '[::1]:80', 'a.b-c_d~e:8080']) {
      await sameAsEnvoy(pair, `GET /h HTTP/1.1\r\nHost: ${host}\r\n\r\n`, { statuses: [200], closed: false, backend: ['/h'] });
    }
    const curl = findTool('curl');
    if (curl !== undefined) {
      // What `curl --http2` does to an http:// URL: an h2c upgrade the gateway declines by answering over HTTP/1.1.
      const { stdout } = await run(curl, ['-s', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--http2', `http://127.0.0.1:${pair.trellis.port}/curl`]);
      assert.equal(stdout, '200 1.1');
    }
    await stillServing(pair);
  });

  test('finding 4: HTTP/2 rapid reset ends in one GOAWAY(ENHANCE_YOUR_CALM) per connection; cancelled requests do not reach the backend', async (t) => {
    for (const [name, port] of [['trellis', pair.trellis.port], ...(pair.envoy ? [['envoy', pair.envoy.port]] : [])] as [string, number][]) {
      const prefix = `/rr-${name}-`;
      const r = await rapidReset({ port, pathPrefix: prefix, maxResets: 1500, deadline: Date.now() + 20_000, batch: 50 });
      await new Promise((res) => setTimeout(res, 300));
      const reached = pair.backend.count(prefix);
      const perThousand = (reached * 1000) / r.resets;
      t.diagnostic(`[summary] rapid reset, ${name}: ${r.resets} resets over ${r.connections} connection(s), ${reached} cancelled requests reached the backend (${perThousand.toFixed(1)} per 1,000), GOAWAYs ${JSON.stringify(r.goaways)}`);
      if (name !== 'trellis') continue;
      for (const seen of r.goaways) {
        // RFC 9113 section 6.8: later GOAWAYs may not raise the last-stream id; we send one.
        assert.ok(seen.length <= 1, `more than one GOAWAY on a connection: ${JSON.stringify(seen)}`);
        if (seen.length === 1) assert.equal(seen[0].code, 11, 'ENHANCE_YOUR_CALM');
      }
      assert.ok(r.goaways.some((g) => g.length === 1), 'the guard ended a connection');
      assert.ok(perThousand <= 10, `${reached} of ${r.resets} cancelled requests reached the backend`);
    }
    await stillServing(pair);
  });

  test('finding 6: a 5 MB file of random bytes in the config directory costs the control plane log one short line; config keeps serving', async () => {
    const before = pair.control.output().length;
    pair.write('junk.yaml', randomBytes(5_000_000).toString('latin1'));
    await waitFor('the control plane reports junk.yaml', () => pair.control.output().slice(before).includes('NOT_TEXT'), 30_000, 100);
    await new Promise((r) => setTimeout(r, 1500));
    const added = pair.control.output().slice(before);
    assert.ok(added.length < 4096, `the control plane wrote ${added.length} bytes about it:\n${added.slice(0, 2000)}`);
    assert.doesNotMatch(added, /[^\x20-\x7e\n]/, 'only printable text in the log');
    assert.match(added, /junk\.yaml/);
    rmSync(join(pair.configDir, 'junk.yaml'));
    await stillServing(pair);
  });
});
