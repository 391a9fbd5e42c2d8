/**
 * Gateway API conformance cases (the shared transcription under /work/shared/conformance, plus
 * test/conformance/cases) run against the generated route tables: status checks (evaluated by
 * the e2e runner's own status-checks.ts) and, per request case, the routing decision (backend
 * service, 404/500, redirect target and port, rewritten path and host). Traffic-level behaviour (timeouts, retries, mirrors, weights
 * distribution) is checked by the end-to-end runner, not here.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import type { XdsJson } from '../../../xds/types.ts';
import { parseOutboundClusterName } from '../names.ts';
import { INVALID_BACKEND_CLUSTER, buildGatewayApiRoute, buildSidecarOutboundRoute } from './index.ts';
import { resourcesFromYaml } from '../../../registry/test-support.ts';
import { sharedDir, skipUnlessShared } from '../../../../test/support/skip.ts';
import { Corpus, EXTRA_CASES, GatewayClassName, objectsOf, type CaseFile, type ClientRef } from '../../../../test/conformance/corpus.ts';
import { evaluateStatusChecks, gatewayClassObject } from '../../../../test/conformance/status-checks.ts';
import { type TestOutcome, evaluate, inputsFromResources, type inputsFromYaml, rewrittenRequest, testProxy } from './test-support.ts';

const skip = skipUnlessShared('conformance/gateway-api/cases');
const corpus = new Corpus(resolve(sharedDir, 'conformance/gateway-api'), [EXTRA_CASES]);

type Case = CaseFile;

function check(c: Case): void {
  const texts = [corpus.baseText('gateway')];
  if (c.profile === 'mesh') texts.push(corpus.baseText('mesh'));
  for (const m of c.manifests ?? []) texts.push(corpus.manifestText(m));
  let resources = resourcesFromYaml(texts.join('\n---\n'));
  let inputs = inputsFromResources(resources);
  // The status checks as the e2e runner evaluates them (one evaluator, one status computation).
  const objects = [gatewayClassObject(GatewayClassName), ...objectsOf(texts.join('\n---\n'))];
  const status = evaluateStatusChecks(objects, c.statusChecks ?? [], c.routeKind);
  assert.deepEqual(status, { failures: [], unsupported: [] }, `${c.name} status checks`);
  for (const rc of c.cases ?? []) {
    const req = rc.request;
    for (const b of (rc as { before?: { action: string; kind: string; namespace: string; name: string }[] }).before ?? []) {
      if (b.action !== 'delete') continue;
      resources = resources.filter((r) => !(r.kind === b.kind && r.metadata.namespace === b.namespace && r.metadata.name === b.name));
      inputs = inputsFromResources(resources);
    }
    // Traffic-level outcomes (backend-driven failures, retries, delays) and placeholder hosts are the e2e runner's job.
    const path = String(req.path ?? '');
    if (/succeedAfter=|delay=/.test(path) || String(req.host ?? '').includes('{')) continue;
    if (req.protocol === 'grpc' || req.service !== undefined || c.routeKind === 'GRPCRoute') {
      checkGrpc(c, inputs, rc);
      continue;
    }
    const { table, host } = tableFor({ ...c, gateway: rc.gateway ?? c.gateway }, inputs, req as Record<string, unknown>, rc.client);
    const outcome = evaluate(table, { host, path: String(req.path ?? '/'), method: String(req.method ?? 'GET'), headers: req.headers as Record<string, string> });
    expectOutcome(c, inputs, rc, outcome, String(req.path ?? '/'));
  }
}

function tableFor(c: Case, inputs: ReturnType<typeof inputsFromYaml>, req: Record<string, unknown>, client?: ClientRef): { table: XdsJson; host: string } {
  if (c.profile === 'mesh') {
    const from = client ?? c.client!;
    const labels = Object.fromEntries(from.selector.split(',').map((kv) => kv.split('=')));
    const host = String(req.host ?? 'echo');
    const port = host.includes(':') ? Number(host.split(':')[1]) : 80;
    return { table: buildSidecarOutboundRoute(inputs, testProxy(from.namespace, labels), port), host };
  }
  const gw = inputs.gateways.find((g) => g.metadata.namespace === c.gateway!.namespace && g.metadata.name === c.gateway!.name)!;
  const l = (gw.spec.listeners ?? []).find((x) => x.name === c.gateway!.listener) ?? gw.spec.listeners![0];
  return { table: buildGatewayApiRoute(inputs, `http.${l.port}`, gw, l.port), host: String(req.host ?? 'gateway.test') };
}

function expectOutcome(c: Case, inputs: ReturnType<typeof inputsFromYaml>, rc: NonNullable<Case['cases']>[number], out: TestOutcome, path: string): void {
  const exp = rc.expect;
  const label = `${c.name} ${rc.name ?? JSON.stringify(rc.request)}`;
  const statuses = ([] as unknown[]).concat(exp.status ?? 200).map(Number);
  if (statuses.includes(200) || statuses.includes(204)) {
    assert.ok(out.cluster, `${label}: routed (got ${JSON.stringify(out.status ?? out.redirect)})`);
    assert.notEqual(out.cluster, INVALID_BACKEND_CLUSTER, label);
    if (typeof exp.backend === 'string' && inputs.services.some((s) => s.name === exp.backend)) {
      const parsed = parseOutboundClusterName(out.cluster!);
      // A selector-less Service (manual EndpointSlices) fronts pods of another name: nothing to compare.
      const svc = inputs.services.find((s) => s.hostname === parsed?.host);
      if (svc?.selector === undefined) return;
      const ns = (exp.namespace as string | undefined) ?? (c.profile === 'mesh' ? 'gateway-conformance-mesh' : 'gateway-conformance-infra');
      const backendOk = svc.hostname.startsWith(`${exp.backend}.${ns}.svc`) || (svc.namespace === ns && Object.values(svc.selector).includes(exp.backend));
      assert.ok(backendOk, `${label}: ${out.cluster} is ${exp.backend}`);
    }
    const er = exp.request as { path?: string; host?: string } | undefined;
    if (c.profile === 'gateway' && er && (er.path !== undefined || er.host !== undefined)) {
      const rw = rewrittenRequest(out.route!, path);
      if (er.path) assert.equal(rw.path, er.path, `${label}: rewritten path`);
      if (er.host) assert.equal(rw.host, er.host, `${label}: rewritten host`);
    }
  } else if (statuses.some((s) => s >= 300 && s < 400)) {
    assert.ok(out.redirect, `${label}: redirect`);
    const r = out.redirect!;
    const codes: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };
    assert.ok(statuses.includes(codes[r.response_code as string] ?? 301), `${label}: code ${String(r.response_code)}`);
    const want = exp.redirect as { host?: string; path?: string; scheme?: string; port?: string } | undefined;
    if (want?.host) assert.equal(r.host_redirect, want.host, `${label}: host`);
    if (want?.scheme) assert.equal(r.scheme_redirect ?? rc.request.scheme ?? 'http', want.scheme, `${label}: scheme`);
    if (want?.port) assert.equal(String(r.port_redirect), want.port, `${label}: port`);
    // Upstream accepts no port or the scheme's own when none is expected.
    else if (r.port_redirect !== undefined) assert.equal(r.port_redirect, (want?.scheme ?? rc.request.scheme ?? 'http') === 'https' ? 443 : 80, `${label}: port`);
    if (want?.path) assert.equal(rewrittenRequest({ ...out.route!, route: r }, path).path, want.path, `${label}: path`);
  } else if (statuses.includes(500)) {
    assert.ok(out.status === 500 || out.cluster === INVALID_BACKEND_CLUSTER, `${label}: 500 (got ${out.cluster ?? out.status})`);
  } else if (statuses.includes(404)) {
    assert.equal(out.status, 404, `${label}: 404`);
  }
}

function checkGrpc(c: Case, inputs: ReturnType<typeof inputsFromYaml>, rc: NonNullable<Case['cases']>[number]): void {
  const req = rc.request;
  const svc = String(req.service ?? 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho');
  const method = String(req.method ?? 'Echo');
  const { table, host } = tableFor(c, inputs, { ...req, host: req.authority ?? req.host });
  const headers = Object.fromEntries(Object.entries((req.metadata ?? req.headers ?? {}) as Record<string, string>));
  const out = evaluate(table, { host, path: `/${svc}/${method}`, method: 'POST', headers });
  const exp = rc.expect;
  const label = `${c.name} ${JSON.stringify(req)}`;
  if ((exp.code ?? 'OK') === 'OK' || exp.status === 200) {
    assert.ok(out.cluster, `${label}: routed`);
    if (typeof exp.backend === 'string') assert.ok(parseOutboundClusterName(out.cluster!)?.host.startsWith(`${exp.backend}.`), `${label}: ${out.cluster} is ${exp.backend}`);
  } else if (exp.code === 'Unimplemented') {
    assert.equal(out.status, 404, `${label}: no route (404 -> UNIMPLEMENTED)`);
  }
}

const { cases: caseFiles, bad } = !skip ? corpus.cases() : { cases: [], bad: [] };
for (const c of caseFiles) test(`conformance ${c.name}`, () => check(c));
test('conformance corpus present', { skip }, () => {
  assert.deepEqual(bad, [], 'every case file parses');
  assert.ok(caseFiles.length > 50);
});
