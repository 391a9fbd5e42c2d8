/**
 * Gateway API conformance in the normal suite: the real runner (test/conformance/) against real
 * `trellis control`, gateway proxies, sidecars and echo processes, on the HTTPRoute cases of the
 * mesh profile and a representative subset of the gateway profile's HTTPRoute cases (the full
 * gateway run takes several minutes on 2 cores; it is `npm run conformance`). Asserts the pass
 * counts do not fall below the numbers recorded in test/conformance/README.md, and that no child
 * process outlives the run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { Corpus, type CaseFile } from './conformance/corpus.ts';
import { RepoRoot, liveChildren } from './conformance/processes.ts';
import { runProfile } from './conformance/profile.ts';
import { transparentUnavailable } from './conformance/pod-network.ts';
import type { CaseResult } from './conformance/runner.ts';

const corpus = new Corpus(resolve(RepoRoot, '../shared/conformance/gateway-api'));
const have = corpus.exists();

/** Gateway-profile HTTPRoute cases run here (all on Gateway same-namespace, so one gateway proxy). */
const GatewaySubset = [
  'HTTPRouteSimpleSameNamespace', 'HTTPRouteMatching', 'HTTPRouteExactPathMatching', 'HTTPRouteHeaderMatching',
  'HTTPRouteQueryParamMatching', 'HTTPRouteMethodMatching', 'HTTPRouteRedirectHostAndStatus', 'HTTPRouteRedirectPath',
  'HTTPRouteRequestHeaderModifier', 'HTTPRouteWeight', 'HTTPRouteRetry', 'HTTPRouteInvalidNonExistentBackendRef',
];
/**
 * Recorded minimum pass counts (see test/conformance/README.md). Mesh: all 16 HTTPRoute files with
 * transparent capture (root); without it MeshFrontend and MeshFrontendHostname are skipped.
 */
const MinGatewayPassed = 12;
const MinMeshHttpRoutePassed = transparentUnavailable() === undefined ? 16 : 14;

const isHttpRoute = (c: CaseFile) => (c.features ?? []).includes('SupportHTTPRoute') && (c.routeKind ?? 'HTTPRoute') === 'HTTPRoute';

function describe(rs: readonly CaseResult[]): string {
  return rs.filter((r) => r.outcome !== 'passed').map((r) => `${r.outcome} ${r.profile}/${r.name}: ${r.reasons.join('; ')}`).join('\n');
}

test('conformance: gateway profile HTTPRoute subset', { skip: have ? false : 'no corpus', timeout: 300_000 }, async () => {
  const cases = corpus.cases().cases.filter((c) => c.profile === 'gateway' && GatewaySubset.includes(c.name));
  assert.equal(cases.length, GatewaySubset.length, 'every subset case exists in the corpus');
  const rs = await runProfile({ corpus, profile: 'gateway', cases, log: () => {} });
  assert.equal(liveChildren(), 0, 'no child process left behind');
  const passed = rs.filter((r) => r.outcome === 'passed').length;
  assert.ok(passed >= MinGatewayPassed, `gateway: ${passed} passed, want >= ${MinGatewayPassed}\n${describe(rs)}`);
});

test('conformance: mesh profile HTTPRoute cases', { skip: have ? false : 'no corpus', timeout: 300_000 }, async () => {
  const cases = corpus.cases().cases.filter((c) => c.profile === 'mesh' && isHttpRoute(c));
  const rs = await runProfile({ corpus, profile: 'mesh', cases, log: () => {} });
  assert.equal(liveChildren(), 0, 'no child process left behind');
  const passed = rs.filter((r) => r.outcome === 'passed').length;
  assert.ok(passed >= MinMeshHttpRoutePassed, `mesh: ${passed} passed, want >= ${MinMeshHttpRoutePassed}\n${describe(rs)}`);
});
