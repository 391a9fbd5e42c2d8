/**
 * End to end: `trellis up --detach` runs the built-in demo (a temp copy, so steps can rewrite its
 * routing.yaml) with real processes; curl goes through the ingress gateway and through web-api's
 * sidecar (its outbound listener for port 8080, Host recommendation:8080 — the same route table
 * web-api's own calls use); each walkthrough step (examples/demo/steps) is applied by copying it
 * over routing.yaml (the security steps over security.yaml) and its effect asserted; `trellis down`
 * must leave no process and no port.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessTools } from './support/skip.ts';
import { curl, demoCopy, eventually, livePids, openPorts, readStateFile, root, trellis, type CurlResult, StartTimeoutS, VisibleWithinMs, logTails } from './up-support.ts';
import { recordedPorts, type RuntimeState } from '../src/runtime/state.ts';
import { httpStatus } from '../src/runtime/wait.ts';

const skip = skipUnlessTools('curl');

describe('trellis up: the demo', { skip, timeout: 900_000 }, () => {
  let work = '';
  let config = '';
  let stateDir = '';
  let state: RuntimeState;
  let upMs = 0;
  let recUrl = '';
  let gateway = '';

  const rec = (headers: Record<string, string> = {}) => curl(recUrl, { host: 'recommendation:8080', ...headers });
  const version = (r: CurlResult) => {
    try {
      return (JSON.parse(r.body) as { version?: string }).version;
    } catch {
      return undefined;
    }
  };
  async function applyStep(file: string, visible: () => Promise<boolean>): Promise<void> {
    copyFileSync(join(root, 'examples/demo/steps', file), join(config, 'routing.yaml'));
    assert.ok(await eventually(VisibleWithinMs, visible), `${file}: effect not visible within ${VisibleWithinMs / 1000} s`);
  }
  async function sample(n: number, headers: Record<string, string> = {}): Promise<CurlResult[]> {
    const out: CurlResult[] = [];
    for (let i = 0; i < n; i += 10) out.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => rec(headers)))));
    return out;
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'trellis-up-'));
    config = demoCopy();
    stateDir = join(work, 'state');
    const r = await trellis(['up', '--detach', '--config', config, '--state-dir', stateDir, '--gateway-port', '0', '--start-timeout', String(StartTimeoutS)], { cwd: work, timeoutMs: 600_000 });
    upMs = r.ms;
    assert.equal(r.code, 0, `up failed after ${r.ms} ms: ${r.stderr}\n${r.stdout}\n${logTails(stateDir)}`);
    state = readStateFile(stateDir);
    gateway = state.gatewayUrl!;
    const web = state.processes.find((p) => p.role === 'sidecar' && p.workload === 'web-api-v1')!;
    recUrl = `http://127.0.0.1:${web.ports['outbound:8080']}/`;
  });

  after(async () => {
    if (stateDir) await trellis(['down', '--state-dir', stateDir]);
    rmSync(work, { recursive: true, force: true });
    rmSync(config, { recursive: true, force: true });
  });

  test('up --detach prints the gateway URL and a 200 comes through the gateway (time printed)', async (t) => {
    let first: CurlResult | undefined;
    const t0 = Date.now();
    // `up` returned ready, so the first request should pass; the wait only absorbs a loaded machine.
    assert.ok(await eventually(VisibleWithinMs, async () => (first = await curl(gateway)).status === 200), `last: ${first?.status} ${first?.body}`);
    // How fast is a performance number (~5 s on an idle 2-core machine), printed here, not asserted.
    t.diagnostic(`up --detach to first 200 through the gateway: ${upMs + (Date.now() - t0)} ms (up itself ${upMs} ms)`);
    assert.equal((JSON.parse(first!.body) as { service: string }).service, 'web-api');
    assert.equal(state.processes.filter((p) => p.role === 'workload').length, 4);
    assert.equal(state.processes.filter((p) => p.role === 'sidecar').length, 4);
  });

  test('the gateway returns the three-service JSON (web-api -> recommendation -> purchase-history)', async () => {
    const r = await curl(gateway);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body) as { service: string; upstream: { status: number; body: { service: string; upstream: { body: { service: string } }[] } }[] };
    assert.equal(body.upstream[0].status, 200, `web-api -> recommendation: ${JSON.stringify(body.upstream[0])}`);
    assert.equal(body.upstream[0].body.service, 'recommendation');
    assert.equal(body.upstream[0].body.upstream[0].body.service, 'purchase-history');
  });

  test('web-api\'s sidecar routes recommendation to v1 with the initial routing', async () => {
    const rs = await sample(20);
    assert.deepEqual(new Set(rs.map(version)), new Set(['v1']), rs.map((r) => `${r.status} ${r.body}`).slice(0, 2).join('\n'));
  });

  test('recommendation reaches purchase-history through its own sidecar (HTTP_PROXY)', async () => {
    const rs = await sample(1);
    const body = JSON.parse(rs[0].body) as { upstream: { status: number; body: { service: string } }[] };
    assert.equal(body.upstream[0].body.service, 'purchase-history');
  });

  test('step 1: 90/10 canary over 200 requests', async () => {
    await applyStep('01-canary-90-10.yaml', async () => (await sample(30)).some((r) => version(r) === 'v2'));
    const rs = await sample(200);
    const v2 = rs.filter((r) => version(r) === 'v2').length;
    assert.equal(rs.filter((r) => r.status !== 200).length, 0);
    assert.ok(v2 >= 6 && v2 <= 40, `v2 got ${v2}/200`);
  });

  test('step 2: 50/50 over 200 requests', async () => {
    await applyStep('02-canary-50-50.yaml', async () => (await sample(40)).filter((r) => version(r) === 'v2').length >= 12);
    const v2 = (await sample(200)).filter((r) => version(r) === 'v2').length;
    assert.ok(v2 >= 70 && v2 <= 130, `v2 got ${v2}/200`);
  });

  test('step 3: end-user: jason goes to v2, everyone else to v1', async () => {
    await applyStep('03-header-routing.yaml', async () => (await sample(20)).every((r) => version(r) === 'v1'));
    assert.deepEqual(new Set((await sample(20, { 'end-user': 'jason' })).map(version)), new Set(['v2']));
    assert.deepEqual(new Set((await sample(20, { 'end-user': 'bob' })).map(version)), new Set(['v1']));
  });

  test('step 4: fault injection aborts about half with 503 and delays every call', async () => {
    await applyStep('04-fault-injection.yaml', async () => (await sample(20)).some((r) => r.status === 503));
    const rs = await sample(60);
    const aborted = rs.filter((r) => r.status === 503).length;
    assert.ok(aborted >= 15 && aborted <= 45, `aborted ${aborted}/60`);
    assert.ok(rs.every((r) => r.ms >= 280), `fastest ${Math.min(...rs.map((r) => r.ms))} ms`);
    // Through the gateway, as the README shows it: web-api answers 502 and nests the 503.
    let seen: CurlResult | undefined;
    assert.ok(await eventually(10_000, async () => (seen = await curl(gateway)).status === 502), `last ${seen?.status}`);
    assert.deepEqual((JSON.parse(seen!.body) as { upstream: unknown[] }).upstream[0], { url: 'http://recommendation:8080/', status: 503, body: 'fault filter abort' });
  });

  test('step 5: retries mask a failing v2', async () => {
    const failV2 = { 'x-demo-fail': 'recommendation:v2' };
    await applyStep('05-retries.yaml', async () => {
      const rs = await sample(20, failV2);
      return rs.every((r) => r.status === 200) && rs.every((r) => version(r) === 'v1');
    });
    const rs = await sample(60, failV2);
    assert.equal(rs.filter((r) => r.status !== 200).length, 0);
  });

  test('step 6: a timeout against a slowed v2 answers 504 after about 1 s', async () => {
    await applyStep('06-timeout.yaml', async () => (await sample(5)).every((r) => version(r) === 'v2'));
    // v2 would answer after 8 s: a 504 before that is the 1 s timeout (8x its idle figure to spare).
    const slow = await rec({ 'x-demo-delay': 'recommendation:v2=8000' });
    assert.ok(slow.ms >= 900 && slow.ms < 8000, `took ${slow.ms} ms`);
    // Through the gateway, as the README shows it: 502 from web-api, the 504 nested.
    const viaGateway = await curl(gateway, { 'x-demo-delay': 'recommendation:v2=8000' });
    assert.equal(viaGateway.status, 502);
    assert.deepEqual((JSON.parse(viaGateway.body) as { upstream: { status: number; body: unknown }[] }).upstream.map((u) => [u.status, u.body]), [[504, 'upstream request timeout']]);
    assert.equal(slow.status, 504);
    assert.equal((await rec()).status, 200);
  });

  test('step 7: mirroring serves from v1 and copies every call to v2', async () => {
    const v2 = state.processes.find((p) => p.role === 'sidecar' && p.workload === 'recommendation-v2')!;
    const count = async () => {
      const r = await curl(`http://127.0.0.1:${v2.ports.admin}/stats`);
      const m = /cluster\.inbound\|8080\|\|\.upstream_rq_total: (\d+)/.exec(r.body);
      return m ? Number(m[1]) : 0;
    };
    await applyStep('07-mirroring.yaml', async () => (await sample(5)).every((r) => version(r) === 'v1'));
    const before = await count();
    const rs = await sample(20);
    assert.deepEqual(new Set(rs.map(version)), new Set(['v1']));
    assert.ok(await eventually(30_000, async () => (await count()) >= before + 20), `v2 inbound requests ${before} -> ${await count()}`);
  });

  test('step 8: an AuthorizationPolicy denies one caller, and the 403 names it', async () => {
    copyFileSync(join(root, 'examples/demo/steps/08-deny-caller.yaml'), join(config, 'security.yaml'));
    let denied: CurlResult | undefined;
    assert.ok(await eventually(10_000, async () => (denied = await rec({ 'end-user': 'jason' })).status === 403), `last: ${denied?.status} ${denied?.body}`);
    assert.equal(denied!.body, 'RBAC: access denied by AuthorizationPolicy default/deny-jason');
    assert.equal((await rec({ 'end-user': 'bob' })).status, 200);
  });

  test('step 9: the gateway verifies a minted JWT; no token is refused by name, a bad one is 401', async () => {
    copyFileSync(join(root, 'examples/demo/steps/09-require-jwt.yaml'), join(config, 'security.yaml'));
    let r: CurlResult | undefined;
    assert.ok(await eventually(10_000, async () => (r = await curl(gateway)).status === 403), `last: ${r?.status} ${r?.body}`);
    assert.equal(r!.body, 'RBAC: access denied by AuthorizationPolicy istio-system/require-token');
    const mint = await new Promise<string>((resolve, reject) => execFile(process.execPath, [join(root, 'examples/demo/jwt/mint.ts'), '--sub', 'alice'], (e, out) => (e ? reject(e) : resolve(out.trim()))));
    assert.equal((await curl(gateway, { authorization: `Bearer ${mint}` })).status, 200);
    const bad = await curl(gateway, { authorization: `Bearer ${mint.slice(0, -6)}AAAAAA` });
    assert.equal(bad.status, 401);
    assert.equal(bad.body, 'Jwt verification fails');
    copyFileSync(join(root, 'examples/demo/steps/10-no-policies.yaml'), join(config, 'security.yaml'));
    assert.ok(await eventually(10_000, async () => (await curl(gateway)).status === 200));
  });

  test('status, proxy-status and proxy-config see every proxy', async () => {
    const st = await trellis(['status', '--state-dir', stateDir, '-o', 'json']);
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout) as { processes: { role: string; ready?: boolean; sync?: string }[] };
    const proxies = s.processes.filter((p) => p.role === 'sidecar' || p.role === 'gateway');
    assert.equal(proxies.length, 5);
    assert.ok(proxies.every((p) => p.ready === true && p.sync === 'SYNCED'), JSON.stringify(proxies));
    const control = `http://127.0.0.1:${state.controlDebugPort}`;
    const ps = await trellis(['proxy-status', '--control', control]);
    assert.equal(ps.code, 0, ps.stderr);
    const web = state.processes.find((p) => p.role === 'sidecar' && p.workload === 'web-api-v1')!;
    assert.match(ps.stdout, new RegExp(web.replica!));
    const pc = await trellis(['proxy-config', 'routes', web.nodeId!, '--control', control]);
    assert.equal(pc.code, 0, pc.stderr);
    assert.match(pc.stdout, /recommendation/);
  });

  test('down stops every process and frees every port', async () => {
    const pids = state.processes.map((p) => p.pid).concat(state.supervisorPid);
    const ports = recordedPorts(readStateFile(stateDir));
    const r = await trellis(['down', '--state-dir', stateDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(livePids(pids), []);
    assert.deepEqual(await openPorts(ports), []);
    assert.equal(await httpStatus(state.controlDebugPort!, '/ready'), undefined);
    const again = await trellis(['down', '--state-dir', stateDir]);
    assert.equal(again.code, 0, 'down is idempotent');
    assert.match(again.stdout, /nothing is running/);
  });
});
