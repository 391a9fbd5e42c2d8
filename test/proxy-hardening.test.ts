/**
 * Issue 18's findings, end to end: one `trellis control` watching Istio YAML serves a `trellis
 * proxy` ingress gateway and (when `envoy` is on PATH) a stock Envoy 1.40 with Istio's bootstrap
 * runtime; raw bytes go to both and the trellis gateway must answer as Envoy does (status,
 * connection closed or kept, what reached the backend and with which path) and stay up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cleanups } from './support/processes.ts';
import { findTool } from './support/tools.ts';
import { edgeVirtualService, exchange, startGatewayPair, type Exchange, type GatewayPair } from './support/gateway-pair.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

const Backend = 'backend.default.svc.cluster.local';
const withEnvoy = findTool('envoy') !== undefined;

/** What a client and the backend saw, for comparing the two gateways. */
interface Outcome {
  statuses: number[];
  closed: boolean;
  /** Targets that reached the backend. */
  backend: string[];
}

async function outcome(pair: GatewayPair, port: number, raw: string, waitMs = 1500): Promise<Outcome & { ex: Exchange }> {
  const before = pair.backend.hits.length;
  const ex = await exchange(port, Buffer.from(raw, 'latin1'), waitMs);
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
  const t = await outcome(pair, pair.trellis.port, raw);
  const mine = { statuses: t.statuses, closed: t.closed, backend: t.backend };
  if (pair.envoy !== undefined) {
    const e = await outcome(pair, pair.envoy.port, raw);
    assert.deepEqual({ statuses: e.statuses, closed: e.closed, backend: e.backend }, expected, `Envoy on ${JSON.stringify(raw)} (the expectation is wrong)`);
  }
  assert.deepEqual(mine, expected, `trellis on ${JSON.stringify(raw)}: ${JSON.stringify(t.ex.text.slice(0, 200))}`);
}

describe('issue 18 findings against a trellis gateway (and stock Envoy) from one YAML config', { timeout: 300_000 }, () => {
  let pair: GatewayPair;
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
});
