/**
 * End to end, transparent capture: `trellis up --capture transparent --detach` runs the demo with
 * every replica in its own network namespace (iptables REDIRECT to the sidecar, names resolved by
 * the runtime's DNS responder to auto-allocated VIPs). Requests enter through the ingress gateway
 * and, for the routing steps, start inside web-api's namespace as a plain `curl
 * http://recommendation:8080/` — exactly what the app itself does, unaware of the mesh. `down`
 * must leave no process, host port, namespace, veth, bridge, /etc/netns entry or host iptables
 * change behind. Needs root plus ip/iptables/setpriv/ss and the SO_ORIGINAL_DST addon.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool } from './support/tools.ts';
import { skipUnlessTools, skipUnlessTransparentCapture } from './support/skip.ts';
import { curl, demoCopy, eventually, livePids, openPorts, readStateFile, root, trellis, type CurlResult, StartTimeoutS, VisibleWithinMs, logTails } from './up-support.ts';
import { recordedPorts, type RuntimeState } from '../src/runtime/state.ts';
import { serviceEntryYaml } from './support/egress-mesh.ts';
import { allocateVips } from '../src/registry/vip.ts';

const skip = skipUnlessTransparentCapture() || skipUnlessTools('curl');

/** Host netfilter state, without iptables-save's timestamp comments. */
function hostIptables(): string {
  const save = findTool('iptables-save');
  if (save === undefined) return '';
  return execFileSync(save, { encoding: 'utf8' }).split('\n').filter((l) => !l.startsWith('#')).join('\n');
}

function ipLines(args: string[]): string[] {
  return execFileSync(findTool('ip')!, args, { encoding: 'utf8' }).split('\n').filter(Boolean);
}

function hostLinks(): string[] {
  return ipLines(['-o', 'link', 'show']).map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '');
}

/** The mesh's bridge and host veths that still exist. */
function ownLinks(st: RuntimeState): string[] {
  return hostLinks().filter((l) => l === st.bridge || st.netns.some((n) => n.hostVeth === l));
}

/** curl run inside a network namespace (as the workload would call); never throws. */
function nsCurl(netns: string, url: string, headers: Record<string, string> = {}, maxTimeS = 10): Promise<CurlResult> {
  const args = ['netns', 'exec', netns, findTool('curl')!, '-s', '-m', String(maxTimeS), '-o', '-', '-w', '\n%{http_code}'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(findTool('ip')!, args, { timeout: (maxTimeS + 5) * 1000 }, (_err, stdout) => {
      const i = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(i + 1)) || 0, body: stdout.slice(0, Math.max(0, i)), ms: Date.now() - t0 });
    });
  });
}

describe('trellis up --capture transparent: the demo in network namespaces', { skip, timeout: 900_000 }, () => {
  let work = '';
  let config = '';
  let stateDir = '';
  let state: RuntimeState;
  let upMs = 0;
  let gateway = '';
  let webNs = '';
  let iptablesBefore = '';

  const rec = (headers: Record<string, string> = {}) => nsCurl(webNs, 'http://recommendation:8080/', headers);
  const serviceOf = (r: CurlResult) => {
    try {
      return (JSON.parse(r.body) as { service?: string }).service;
    } catch {
      return undefined;
    }
  };
  const version = (r: CurlResult) => {
    try {
      return (JSON.parse(r.body) as { version?: string }).version;
    } catch {
      return undefined;
    }
  };
  async function sample(n: number, headers: Record<string, string> = {}): Promise<CurlResult[]> {
    const out: CurlResult[] = [];
    for (let i = 0; i < n; i += 10) out.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => rec(headers)))));
    return out;
  }
  async function applyStep(file: string, visible: () => Promise<boolean>): Promise<void> {
    copyFileSync(join(root, 'examples/demo/steps', file), join(config, 'routing.yaml'));
    assert.ok(await eventually(VisibleWithinMs, visible), `${file}: effect not visible within ${VisibleWithinMs / 1000} s`);
  }

  before(async () => {
    iptablesBefore = hostIptables();
    work = mkdtempSync(join(tmpdir(), 'trellis-upt-'));
    config = demoCopy();
    stateDir = join(work, 'state');
    const r = await trellis(['up', '--detach', '--capture', 'transparent', '--config', config, '--state-dir', stateDir, '--gateway-port', '0', '--start-timeout', String(StartTimeoutS)], { cwd: work, timeoutMs: 600_000 });
    upMs = r.ms;
    assert.equal(r.code, 0, `up failed after ${r.ms} ms: ${r.stderr}\n${r.stdout}\n${logTails(stateDir)}`);
    state = readStateFile(stateDir);
    gateway = state.gatewayUrl!;
    webNs = state.processes.find((p) => p.role === 'workload' && p.workload === 'web-api-v1')!.netns!;
  });

  after(async () => {
    if (stateDir) await trellis(['down', '--state-dir', stateDir]);
    if (work) await trellis(['down', '--state-dir', join(work, 'crash')]); // the second mesh, should its test have failed
    rmSync(work, { recursive: true, force: true });
    rmSync(config, { recursive: true, force: true });
  });

  test('every replica runs in its own namespace; the gateway returns the three-service JSON', async () => {
    assert.equal(state.capture, 'transparent');
    assert.equal(state.netns.length, 4);
    const namespaces = ipLines(['netns', 'list']).map((l) => l.split(' ')[0]);
    for (const n of state.netns) assert.ok(namespaces.includes(n.name), `${n.name} exists`);
    for (const p of state.processes.filter((x) => x.role === 'sidecar' || x.role === 'workload')) assert.ok(p.netns?.startsWith('trellis-'), `${p.name} in a namespace`);
    let first: CurlResult | undefined;
    const t0 = Date.now();
    assert.ok(await eventually(VisibleWithinMs, async () => (first = await curl(gateway)).status === 200), `last: ${first?.status} ${first?.body}`);
    process.stderr.write(`# transparent: up --detach ${upMs} ms; first 200 through the gateway ${upMs + Date.now() - t0} ms after the command\n`);
    const body = JSON.parse(first!.body) as { service: string; upstream: { status: number; body: { service: string; upstream: { body: { service: string } }[] } }[] };
    assert.equal(body.service, 'web-api');
    assert.equal(body.upstream[0].status, 200, JSON.stringify(body.upstream[0]));
    assert.equal(body.upstream[0].body.service, 'recommendation');
    assert.equal(body.upstream[0].body.upstream[0].body.service, 'purchase-history');
  });

  test('inside a namespace, service names resolve to the auto-allocated VIP (search path and FQDN); unknown names do not', () => {
    const vip = allocateVips([{ namespace: 'default', name: 'purchase-history' }, { namespace: 'default', name: 'recommendation' }, { namespace: 'default', name: 'web-api' }]).get('default/recommendation');
    for (const name of ['recommendation', 'recommendation.default', 'recommendation.default.svc.cluster.local']) {
      const out = execFileSync(findTool('ip')!, ['netns', 'exec', webNs, 'getent', 'ahostsv4', name], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(out.split(/\s+/)[0], vip, `${name}: ${out}`);
    }
    assert.throws(() => execFileSync(findTool('ip')!, ['netns', 'exec', webNs, 'getent', 'ahostsv4', 'no-such-service'], { timeout: 10_000, stdio: 'pipe' }));
  });

  test('web-api\'s plain http://recommendation:8080 goes through its sidecar: v1 only with the initial routing', async () => {
    const rs = await sample(20);
    assert.deepEqual(new Set(rs.map(version)), new Set(['v1']), rs.slice(0, 2).map((r) => `${r.status} ${r.body}`).join('\n'));
  });

  test('step 1: 90/10 canary over 200 requests', async () => {
    await applyStep('01-canary-90-10.yaml', async () => (await sample(30)).some((r) => version(r) === 'v2'));
    const rs = await sample(200);
    const v2 = rs.filter((r) => version(r) === 'v2').length;
    assert.equal(rs.filter((r) => r.status !== 200).length, 0);
    assert.ok(v2 >= 6 && v2 <= 40, `v2 got ${v2}/200`);
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
  });

  test('egress: ALLOW_ANY passes an unknown host through; REGISTRY_ONLY answers HTTP with 502 and closes TCP, while a ServiceEntry host still works', async () => {
    // "External" servers on the host, reached from the namespace over the mesh's bridge (never the internet).
    const hostIp = state.netns[0].hostIp;
    const seen: string[] = [];
    const web = http.createServer((req, res) => {
      seen.push(`http ${req.headers.host} ${req.url}`);
      res.end('external\n');
    });
    const tcp = net.createServer((s) => {
      seen.push('tcp');
      s.end('hello\n');
    });
    await new Promise<void>((r) => web.listen(0, '0.0.0.0', r));
    await new Promise<void>((r) => tcp.listen(0, '0.0.0.0', r));
    const webPort = (web.address() as net.AddressInfo).port;
    const tcpPort = (tcp.address() as net.AddressInfo).port;
    try {
      // ALLOW_ANY (default): PassthroughCluster to the original destination.
      const open = await nsCurl(webNs, `http://${hostIp}:${webPort}/any`);
      assert.equal(open.status, 200, open.body);
      assert.ok(seen.includes(`http ${hostIp}:${webPort} /any`), seen.join('; '));
      await nsCurl(webNs, `telnet://${hostIp}:${tcpPort}`, {}, 3);
      assert.ok(seen.includes('tcp'), 'TCP passes through');

      writeFileSync(join(config, 'egress.yaml'), `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
${serviceEntryYaml({ name: 'api-external', host: 'api.external.test', ports: [{ number: webPort, name: 'http', protocol: 'HTTP' }], address: hostIp })}`);
      assert.ok(await eventually(20_000, async () => (await nsCurl(webNs, `http://${hostIp}:${webPort}/blocked`)).status === 502), 'REGISTRY_ONLY in force');
      seen.length = 0;
      const blocked = await nsCurl(webNs, `http://${hostIp}:${webPort}/blocked-again`);
      assert.equal(blocked.status, 502);
      const allowed = await nsCurl(webNs, `http://${hostIp}:${webPort}/allowed`, { host: 'api.external.test' });
      assert.equal(allowed.status, 200, allowed.body);
      await nsCurl(webNs, `telnet://${hostIp}:${tcpPort}`, {}, 3);
      assert.deepEqual(seen, [`http api.external.test /allowed`], 'the unknown host got nothing, over HTTP or TCP');
    } finally {
      rmSync(join(config, 'egress.yaml'), { force: true });
      // Back to ALLOW_ANY, and every proxy has acknowledged it (the next test checks sync state).
      await eventually(VisibleWithinMs, async () => (await nsCurl(webNs, `http://${hostIp}:${webPort}/back`)).status === 200);
      await eventually(VisibleWithinMs, async () => {
        const rows = (await (await fetch(`http://127.0.0.1:${state.controlDebugPort}/debug/syncz`)).json()) as { types: Record<string, { state: string }> }[];
        return rows.every((r) => Object.values(r.types).every((t) => t.state === 'SYNCED' || t.state === 'NOT SENT'));
      });
      web.closeAllConnections();
      await new Promise<void>((r) => web.close(() => r()));
      await new Promise<void>((r) => tcp.close(() => r()));
    }
  });

  test('status sees every proxy ready and SYNCED (sidecars probed at their namespace IP)', async () => {
    const st = await trellis(['status', '--state-dir', stateDir, '-o', 'json']);
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout) as { capture: string; processes: { role: string; ready?: boolean; sync?: string }[] };
    assert.equal(s.capture, 'transparent');
    const proxies = s.processes.filter((p) => p.role === 'sidecar' || p.role === 'gateway');
    assert.equal(proxies.length, 5);
    assert.ok(proxies.every((p) => p.ready === true && p.sync === 'SYNCED'), JSON.stringify(proxies));
  });

  test('a second mesh runs alongside on its own bridge and /24; after its supervisor is SIGKILLed, down removes only its own', async () => {
    const crashDir = join(work, 'crash');
    const r = await trellis(['up', '--detach', '--capture', 'transparent', '--config', config, '--state-dir', crashDir, '--gateway-port', '0', '--start-timeout', String(StartTimeoutS)], { cwd: work, timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const st = readStateFile(crashDir);
    assert.ok(st.bridge !== undefined && st.subnet !== undefined);
    assert.notEqual(st.bridge, state.bridge);
    assert.notEqual(st.subnet, state.subnet);
    const prefix = st.subnet.replace(/0\/24$/, '');
    assert.ok(st.netns.every((n) => n.podIp.startsWith(prefix) && n.hostIp === `${prefix}1`), JSON.stringify(st.netns));
    // (step 4's fault is in force in both meshes: web-api answers 502 when its call to recommendation was aborted)
    let second: CurlResult | undefined;
    assert.ok(await eventually(VisibleWithinMs, async () => serviceOf(second = await curl(st.gatewayUrl!)) === 'web-api'), `second mesh: ${second?.status} ${second?.body}`);

    process.kill(st.supervisorPid, 'SIGKILL');
    assert.ok(await eventually(30_000, async () => livePids([st.supervisorPid]).length === 0));
    assert.equal(livePids(st.processes.map((p) => p.pid)).length, st.processes.length, 'children outlive the supervisor');
    const d = await trellis(['down', '--state-dir', crashDir]);
    assert.equal(d.code, 0, d.stderr + d.stdout);
    process.stderr.write(`# second transparent mesh (${st.bridge} ${st.subnet}): up --detach ${r.ms} ms; down after SIGKILL ${d.ms} ms\n`);
    assert.deepEqual(livePids(st.processes.map((p) => p.pid)), []);
    const namespaces = ipLines(['netns', 'list']).map((l) => l.split(' ')[0]);
    assert.deepEqual(st.netns.filter((n) => namespaces.includes(n.name)).map((n) => n.name), []);
    assert.deepEqual(ownLinks(st), [], 'its bridge and veths are gone');
    assert.equal(hostIptables(), iptablesBefore);

    // The first mesh is untouched: its namespaces, bridge and traffic.
    assert.ok(state.netns.every((n) => namespaces.includes(n.name)));
    assert.equal(ownLinks(state).length, 1 + state.netns.length);
    const after = await curl(gateway);
    assert.equal(serviceOf(after), 'web-api', `the first mesh still serves: ${after.status} ${after.body}`);
    assert.equal(readStateFile(stateDir).phase, 'ready');
  });

  test('down leaves no process, port, namespace, veth, bridge, /etc/netns entry or host iptables change', async () => {
    const st = readStateFile(stateDir);
    const pids = st.processes.map((p) => p.pid).concat(st.supervisorPid);
    const ports = recordedPorts(st);
    const r = await trellis(['down', '--state-dir', stateDir]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(livePids(pids), []);
    assert.deepEqual(await openPorts(ports), []);
    const namespaces = ipLines(['netns', 'list']).map((l) => l.split(' ')[0]);
    assert.deepEqual(st.netns.filter((n) => namespaces.includes(n.name)).map((n) => n.name), []);
    assert.deepEqual(ownLinks(st), [], 'its bridge and veths are gone');
    assert.deepEqual(st.netns.filter((n) => existsSync(`/etc/netns/${n.name}`)).map((n) => n.name), []);
    assert.equal(hostIptables(), iptablesBefore, 'host iptables untouched');
    const again = await trellis(['down', '--state-dir', stateDir]);
    assert.equal(again.code, 0, 'down is idempotent');
    assert.match(again.stdout, /nothing is running/);
  });
});
