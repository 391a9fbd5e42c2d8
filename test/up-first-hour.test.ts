/**
 * Issue 14, the first hour, with the real binary and the demo plus one more Workload whose app
 * calls `recommendation` with every common HTTP client (Node's fetch and http, curl, Python
 * requests, Go's net/http) as a user would write it, with nothing but the environment `up` gives:
 *   - `up` run from one directory prints curl commands for the gateway's real routes;
 *   - status, proxy-status, proxy-config and down, run from another directory with no flags and
 *     no TRELLIS_CONTROL_URL, find the mesh; proxy-config takes the replica names status prints
 *     and fills its VIRTUAL SERVICE / DESTINATION RULE columns;
 *   - every client reaches the service through its sidecar with VirtualService routing applied
 *     per request (end-user: jason -> v2, everyone else v1);
 *   - a second VirtualService of the same name in a new file is named in control.log and by status.
 * The per-user list of running meshes lives in a temp XDG_STATE_HOME, so other meshes on the
 * machine are not seen.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { curl, demoCopy, eventually, readStateFile, root, trellis } from './support/trellis-up.ts';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const CLIENTS_APP = `// Calls http://recommendation:8080/ with the client named by ?via=, passing end-user on.
import http from 'node:http';
import { execFile } from 'node:child_process';
const target = 'http://recommendation:8080/';
const run = (cmd, args) => new Promise((resolve) => execFile(cmd, args, { timeout: 8000 }, (err, stdout, stderr) =>
  resolve(err ? { status: 0, error: String(err.message) + stderr } : JSON.parse(stdout))));
const clients = {
  'node-fetch': async (user) => {
    const r = await fetch(target, { headers: user ? { 'end-user': user } : {} });
    return { status: r.status, body: await r.json() };
  },
  'node-http': (user) => new Promise((resolve) => {
    http.get(target, { headers: user ? { 'end-user': user } : {} }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(b) }));
    }).on('error', (e) => resolve({ status: 0, error: e.message }));
  }),
  curl: (user) => run(process.env.CURL_CLIENT, [target, user]),
  python: (user) => run('python3', ['-c', 'import json,sys,requests; r = requests.get(sys.argv[1], headers={"end-user": sys.argv[2]}); print(json.dumps({"status": r.status_code, "body": r.json()}))', target, user]),
  go: (user) => run(process.env.GO_CLIENT, [target, user]),
};
http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  let out;
  try {
    out = await clients[u.searchParams.get('via')](req.headers['end-user'] ?? '');
  } catch (e) {
    out = { status: 0, error: e.message };
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(out));
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

// curl prints the body, then the code on a line of its own; the app's run() parses stdout as JSON.
const CURL_WRAPPER = `#!/bin/sh
out=$(curl -s -H "end-user: $2" -w '\\n%{http_code}' "$1")
code=$(printf '%s' "$out" | tail -n 1)
body=$(printf '%s' "$out" | sed '$d')
printf '{"status": %s, "body": %s}' "$code" "$body"
`;

const GO_CLIENT = `package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	req, _ := http.NewRequest("GET", os.Args[1], nil)
	req.Header.Set("end-user", os.Args[2])
	res, err := http.DefaultClient.Do(req) // net/http reads HTTP_PROXY from the environment
	if err != nil {
		fmt.Print("{\\"status\\": 0}")
		return
	}
	b, _ := io.ReadAll(res.Body)
	var body any
	json.Unmarshal(b, &body)
	out, _ := json.Marshal(map[string]any{"status": res.StatusCode, "body": body})
	fmt.Print(string(out))
}
`;

function clientsYaml(node: string, env: Record<string, string>): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: clients
spec:
  selector: {app: clients}
  ports: [{name: http, port: 8080}]
---
apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata:
  name: clients
  labels: {app: clients, version: v1}
spec:
  command: [${JSON.stringify(node)}, clients.mjs]
  env: ${JSON.stringify(env)}
  readinessPath: /?via=none
  ports: [{name: http, port: 8080, protocol: HTTP}]
`;
}

describe('the first hour: trellis up, then the commands a new user runs', { skip: skipUnlessTools('curl'), timeout: 300_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'trellis-first-hour-'));
  const project = join(tmp, 'project'); // where `up` runs (its ./.trellis)
  const elsewhere = join(tmp, 'elsewhere'); // where the other commands run
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: join(tmp, 'xdg') };
  delete env.TRELLIS_CONTROL_URL;
  delete env.TRELLIS_STATE_DIR;
  const config = demoCopy();
  const clients = ['node-fetch', 'node-http', 'curl', 'python', 'go'].filter((c) =>
    c === 'python' ? findTool('python3') !== undefined && tryRun('python3', ['-c', 'import requests']) : c === 'go' ? findTool('go') !== undefined : true);
  let upOut = '';
  let appPort = 0;

  function tryRun(cmd: string, args: string[]): boolean {
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  before(async () => {
    mkdirSync(project);
    mkdirSync(elsewhere);
    const appEnv: Record<string, string> = {};
    if (clients.includes('go')) {
      writeFileSync(join(tmp, 'main.go'), GO_CLIENT);
      execFileSync(findTool('go')!, ['build', '-o', join(tmp, 'goclient'), join(tmp, 'main.go')], { cwd: tmp, env: { ...process.env, GO111MODULE: 'off' }, timeout: 120_000 });
      appEnv.GO_CLIENT = join(tmp, 'goclient');
    }
    writeFileSync(join(config, 'clients.mjs'), CLIENTS_APP);
    writeFileSync(join(tmp, 'curl-client.sh'), CURL_WRAPPER, { mode: 0o755 });
    appEnv.CURL_CLIENT = join(tmp, 'curl-client.sh');
    writeFileSync(join(config, 'clients.yaml'), clientsYaml(process.execPath, appEnv));
    const up = await trellis(['up', '--detach', '--config', config, '--gateway-port', '0'], { cwd: project, env, timeoutMs: 120_000 });
    assert.equal(up.code, 0, up.stderr);
    upOut = up.stdout;
    const st = readStateFile(join(project, '.trellis'));
    appPort = st.processes.find((p) => p.role === 'workload' && p.workload === 'clients')!.ports['app:8080'];
  });

  after(async () => {
    await trellis(['down', '--state-dir', join(project, '.trellis')], { env });
    rmSync(tmp, { recursive: true, force: true });
    rmSync(config, { recursive: true, force: true });
  });

  test('up prints a curl command for the route the gateway serves, and it answers 200', async () => {
    const m = /^try: {3}curl (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(upOut);
    assert.ok(m !== null, upOut);
    assert.equal((await curl(m[1])).status, 200);
    assert.doesNotMatch(upOut, /TRELLIS_CONTROL_URL/);
  });

  test('status, proxy-status and proxy-config find the mesh from another directory, by replica name', async () => {
    const st = await trellis(['status', '-o', 'json'], { cwd: elsewhere, env });
    assert.equal(st.code, 0, st.stdout + st.stderr);
    const s = JSON.parse(st.stdout) as { stateDir: string; processes: { role: string; workload?: string; replica?: string }[] };
    assert.equal(s.stateDir, join(project, '.trellis'));
    const web = s.processes.find((p) => p.role === 'sidecar' && p.workload === 'web-api-v1')!.replica!;
    const table = await trellis(['status'], { cwd: elsewhere, env });
    assert.match(table.stdout, new RegExp(`sidecar\\s+web-api-v1\\s+${web}`));

    const ps = await trellis(['proxy-status'], { cwd: elsewhere, env });
    assert.equal(ps.code, 0, ps.stderr);
    assert.equal(ps.stdout.trim().split('\n').length, 1 + 6, ps.stdout); // gateway + 5 sidecars

    const routes = await trellis(['proxy-config', 'routes', web], { cwd: elsewhere, env });
    assert.equal(routes.code, 0, routes.stderr);
    assert.match(routes.stdout, /^8080\s+recommendation\.default\.svc\.cluster\.local:8080\s+.*\/\*\s+recommendation\.default$/m);
    const clusters = await trellis(['proxy-config', 'clusters', web], { cwd: elsewhere, env });
    assert.match(clusters.stdout, /^recommendation\.default\.svc\.cluster\.local\s+8080\s+v2\s+outbound\s+EDS\s+recommendation\.default$/m);
    const gw = await trellis(['proxy-config', 'routes', 'istio-ingressgateway'], { cwd: elsewhere, env });
    assert.match(gw.stdout, /web-api\.default$/m);
  });

  const call = async (via: string, user?: string) => {
    const r = await curl(`http://127.0.0.1:${appPort}/?via=${via}`, user !== undefined ? { 'end-user': user } : {});
    return JSON.parse(r.body || '{}') as { status: number; body?: { version?: string }; error?: string };
  };

  test('Node fetch and http, curl, Python requests and Go net/http reach recommendation through the sidecar, routed per request', async (t) => {
    t.diagnostic(`clients: ${clients.join(', ')} (python needs python3 with requests, go the go toolchain)`);
    copyFileSync(join(root, 'examples/demo/steps/03-header-routing.yaml'), join(config, 'routing.yaml'));
    assert.ok(await eventually(10_000, async () => (await call('node-fetch', 'jason')).body?.version === 'v2'), 'header routing applied');
    for (const via of clients) {
      for (let i = 0; i < 3; i++) {
        const jason = await call(via, 'jason');
        assert.equal(jason.status, 200, `${via}: ${JSON.stringify(jason)}`);
        assert.equal(jason.body?.version, 'v2', `${via} as jason`);
        const other = await call(via, 'alice');
        assert.equal(other.body?.version, 'v1', `${via} as alice: ${JSON.stringify(other)}`);
      }
    }
    copyFileSync(join(root, 'examples/demo/steps/00-reset.yaml'), join(config, 'routing.yaml'));
  });

  test('a VirtualService defined again in another file is named in control.log and by status', async () => {
    writeFileSync(join(config, 'zz-more-routing.yaml'), readFileSync(join(root, 'examples/demo/steps/02-canary-50-50.yaml'), 'utf8'));
    const log = join(project, '.trellis/logs/control.log');
    assert.ok(await eventually(10_000, async () => /DUPLICATE_RESOURCE.*routing\.yaml.*zz-more-routing\.yaml/.test(readFileSync(log, 'utf8'))), readFileSync(log, 'utf8').slice(-2000));
    const st = await trellis(['status'], { cwd: elsewhere, env });
    assert.match(st.stdout, /config problems \(1;[^\n]*\n\s+warning DUPLICATE_RESOURCE \S*zz-more-routing\.yaml:\d+: VirtualService default\/recommendation/);
    for (let i = 0; i < 6; i++) assert.equal((await call('node-fetch')).body?.version, 'v1', 'the first definition keeps routing');
  });

  test('down from another directory stops it; then nothing is running anywhere', async () => {
    const d = await trellis(['down'], { cwd: elsewhere, env });
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /everything stopped/);
    const s = await trellis(['status'], { cwd: elsewhere, env });
    assert.equal(s.code, 1);
    assert.match(s.stdout, /nothing is running/);
  });
});
