/**
 * End to end, transparent capture: the demo walkthrough of test/support/demo-suite.ts (the same
 * steps as test/up-demo.test.ts) with `trellis up --capture transparent --detach`: every replica in
 * its own network namespace (iptables REDIRECT to the sidecar, names resolved by the runtime's DNS
 * responder to auto-allocated VIPs). Requests enter through the ingress gateway and, for the
 * routing steps, start inside web-api's namespace as a plain `curl http://recommendation:8080/`,
 * exactly what the app itself does, unaware of the mesh. Added here: namespaces and DNS, egress
 * policy, a second mesh beside the first; `down` must also leave no namespace, veth, bridge,
 * /etc/netns entry or host iptables change behind. Needs root plus ip/iptables/setpriv/ss and the
 * SO_ORIGINAL_DST addon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool } from './support/tools.ts';
import { skipUnlessTools, skipUnlessTransparentCapture } from './support/skip.ts';
import { curl, eventually, livePids, readStateFile, trellis, type CurlResult, StartTimeoutS, VisibleWithinMs } from './support/trellis-up.ts';
import type { RuntimeState } from '../src/runtime/state.ts';
import { demoSuite, serviceOf, type DemoMesh } from './support/demo-suite.ts';
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

/** web-api's network namespace. */
function webNs(mesh: DemoMesh): string {
  return mesh.state.processes.find((p) => p.role === 'workload' && p.workload === 'web-api-v1')!.netns!;
}

let iptablesBefore = '';

demoSuite({
  capture: 'transparent',
  skip,
  beforeUp: () => {
    iptablesBefore = hostIptables();
  },
  call: (mesh, headers) => nsCurl(webNs(mesh), 'http://recommendation:8080/', headers),
  modeTests: (mesh) => {
    test('every replica runs in its own namespace', () => {
      assert.equal(mesh.state.netns.length, 4);
      const namespaces = ipLines(['netns', 'list']).map((l) => l.split(' ')[0]);
      for (const n of mesh.state.netns) assert.ok(namespaces.includes(n.name), `${n.name} exists`);
      for (const p of mesh.state.processes.filter((x) => x.role === 'sidecar' || x.role === 'workload')) assert.ok(p.netns?.startsWith('trellis-'), `${p.name} in a namespace`);
    });

    test('inside a namespace, service names resolve to the auto-allocated VIP (search path and FQDN); unknown names do not', () => {
      const vip = allocateVips([{ namespace: 'default', name: 'purchase-history' }, { namespace: 'default', name: 'recommendation' }, { namespace: 'default', name: 'web-api' }]).get('default/recommendation');
      for (const name of ['recommendation', 'recommendation.default', 'recommendation.default.svc.cluster.local']) {
        const out = execFileSync(findTool('ip')!, ['netns', 'exec', webNs(mesh), 'getent', 'ahostsv4', name], { encoding: 'utf8', timeout: 10_000 });
        assert.equal(out.split(/\s+/)[0], vip, `${name}: ${out}`);
      }
      assert.throws(() => execFileSync(findTool('ip')!, ['netns', 'exec', webNs(mesh), 'getent', 'ahostsv4', 'no-such-service'], { timeout: 10_000, stdio: 'pipe' }));
    });

    test('egress: ALLOW_ANY passes an unknown host through; REGISTRY_ONLY answers HTTP with 502 and closes TCP, while a ServiceEntry host still works', async () => {
      // "External" servers on the host, reached from the namespace over the mesh's bridge (never the internet).
      const hostIp = mesh.state.netns[0].hostIp;
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
        const open = await nsCurl(webNs(mesh), `http://${hostIp}:${webPort}/any`);
        assert.equal(open.status, 200, open.body);
        assert.ok(seen.includes(`http ${hostIp}:${webPort} /any`), seen.join('; '));
        await nsCurl(webNs(mesh), `telnet://${hostIp}:${tcpPort}`, {}, 3);
        assert.ok(seen.includes('tcp'), 'TCP passes through');

        writeFileSync(join(mesh.config, 'egress.yaml'), `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
${serviceEntryYaml({ name: 'api-external', host: 'api.external.test', ports: [{ number: webPort, name: 'http', protocol: 'HTTP' }], address: hostIp })}`);
        assert.ok(await eventually(20_000, async () => (await nsCurl(webNs(mesh), `http://${hostIp}:${webPort}/blocked`)).status === 502), 'REGISTRY_ONLY in force');
        seen.length = 0;
        const blocked = await nsCurl(webNs(mesh), `http://${hostIp}:${webPort}/blocked-again`);
        assert.equal(blocked.status, 502);
        const allowed = await nsCurl(webNs(mesh), `http://${hostIp}:${webPort}/allowed`, { host: 'api.external.test' });
        assert.equal(allowed.status, 200, allowed.body);
        await nsCurl(webNs(mesh), `telnet://${hostIp}:${tcpPort}`, {}, 3);
        assert.deepEqual(seen, [`http api.external.test /allowed`], 'the unknown host got nothing, over HTTP or TCP');
      } finally {
        rmSync(join(mesh.config, 'egress.yaml'), { force: true });
        // Back to ALLOW_ANY, and every proxy has acknowledged it (the next test checks sync state).
        await eventually(VisibleWithinMs, async () => (await nsCurl(webNs(mesh), `http://${hostIp}:${webPort}/back`)).status === 200);
        await eventually(VisibleWithinMs, async () => {
          const rows = (await (await fetch(`http://127.0.0.1:${mesh.state.controlDebugPort}/debug/syncz`)).json()) as { types: Record<string, { state: string }> }[];
          return rows.every((r) => Object.values(r.types).every((t) => t.state === 'SYNCED' || t.state === 'NOT SENT'));
        });
        web.closeAllConnections();
        await new Promise<void>((r) => web.close(() => r()));
        await new Promise<void>((r) => tcp.close(() => r()));
      }
    });

    test('a second mesh runs alongside on its own bridge and /24; after its supervisor is SIGKILLed, down removes only its own', async () => {
      const crashDir = join(mesh.work, 'crash');
      const r = await trellis(['up', '--detach', '--capture', 'transparent', '--config', mesh.config, '--state-dir', crashDir, '--gateway-port', '0', '--start-timeout', String(StartTimeoutS)], { cwd: mesh.work, timeoutMs: 600_000 });
      assert.equal(r.code, 0, r.stderr);
      const st = readStateFile(crashDir);
      assert.ok(st.bridge !== undefined && st.subnet !== undefined);
      assert.notEqual(st.bridge, mesh.state.bridge);
      assert.notEqual(st.subnet, mesh.state.subnet);
      const prefix = st.subnet.replace(/0\/24$/, '');
      assert.ok(st.netns.every((n) => n.podIp.startsWith(prefix) && n.hostIp === `${prefix}1`), JSON.stringify(st.netns));
      // (the last step's routing is in force in both meshes; whatever it is, the gateway answers from web-api)
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
      assert.ok(mesh.state.netns.every((n) => namespaces.includes(n.name)));
      assert.equal(ownLinks(mesh.state).length, 1 + mesh.state.netns.length);
      const after = await curl(mesh.gateway);
      assert.equal(serviceOf(after), 'web-api', `the first mesh still serves: ${after.status} ${after.body}`);
      assert.equal(readStateFile(mesh.stateDir).phase, 'ready');
    });

  },
  afterDown: (_mesh, st) => {
    const namespaces = ipLines(['netns', 'list']).map((l) => l.split(' ')[0]);
    assert.deepEqual(st.netns.filter((n) => namespaces.includes(n.name)).map((n) => n.name), []);
    assert.deepEqual(ownLinks(st), [], 'its bridge and veths are gone');
    assert.deepEqual(st.netns.filter((n) => existsSync(`/etc/netns/${n.name}`)).map((n) => n.name), []);
    assert.equal(hostIptables(), iptablesBefore, 'host iptables untouched');
  },
  cleanup: async (mesh) => {
    await trellis(['down', '--state-dir', join(mesh.work, 'crash')]); // the second mesh, should its test have failed
  },
});
