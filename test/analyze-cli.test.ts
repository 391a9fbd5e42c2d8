/**
 * `trellis analyze` end to end: the real CLI in a child process (bin/trellis.js on this Node 24),
 * over real files and stdin; checks exit codes (0 clean, 1 errors, 2 usage), that text output
 * names file, line, resource and field, and that `-o json` is machine-readable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function trellis(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin/trellis.js'), ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

const badSubset = `apiVersion: v1
kind: Service
metadata:
  name: recommendation
  namespace: default
spec:
  selector:
    app: recommendation
  ports:
  - name: http
    port: 8080
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: recommendation
  namespace: default
spec:
  hosts:
  - recommendation
  http:
  - route:
    - destination:
        host: recommendation
        subset: v3
`;

test('analyze examples/ exits 0 with a summary', async () => {
  const r = await trellis(['analyze', 'examples/']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /0 errors/);
});

test('an undefined subset exits 1 and names file, line, resource and field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-analyze-'));
  try {
    const file = join(dir, 'vs.yaml');
    writeFileSync(file, badSubset);
    const r = await trellis(['analyze', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = r.stdout.split('\n').find((l) => l.includes('SUBSET_NOT_FOUND'));
    assert.ok(line, r.stdout);
    // The subset field is on line 25 of the file.
    assert.ok(line.startsWith(`${file}:25 `), line);
    assert.match(line, /error/);
    assert.match(line, /VirtualService default\/recommendation/);
    assert.match(line, /\(field: spec\.http\[0\]\.route\[0\]\.destination\.subset\)/);
    assert.match(r.stdout, /1 error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reads stdin with -, and -o json is parseable', async () => {
  const r = await trellis(['analyze', '-o', 'json', '-'], badSubset);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const out = JSON.parse(r.stdout) as { diagnostics: { code: string; file?: string; line?: number; fieldPath?: string; resource?: { name: string } }[]; summary: { errors: number; resources: number } };
  const d = out.diagnostics.find((x) => x.code === 'SUBSET_NOT_FOUND');
  assert.ok(d, r.stdout);
  assert.equal(d.file, '-');
  assert.equal(d.line, 25);
  assert.equal(d.resource?.name, 'recommendation');
  assert.equal(out.summary.errors, 1);
  assert.equal(out.summary.resources, 2);
});

test('warnings alone exit 0', async () => {
  const warnOnly = badSubset.replace('subset: v3', 'port:\n          number: 8080') + `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: default
spec:
  jwtRules:
  - issuer: https://issuer.example.com
`;
  const r = await trellis(['analyze', '-'], warnOnly);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /warning\s+JWT_NO_KEYS/);
});

test('usage errors exit 2: no path, unknown flag, bad format, missing path', async () => {
  for (const args of [['analyze'], ['analyze', '--bogus', 'examples/'], ['analyze', '-o', 'yaml', 'examples/'], ['analyze', 'no/such/dir']]) {
    const r = await trellis(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /analyze/);
  }
});

test('--help describes usage and exit codes', async () => {
  const r = await trellis(['analyze', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /usage: trellis analyze/);
  assert.match(r.stdout, /exit status/);
});

test('info diagnostics are summarized in text output and shown with --verbose', async () => {
  const unmanaged = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: web-api
`;
  const quiet = await trellis(['analyze', '-'], unmanaged);
  assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
  assert.doesNotMatch(quiet.stdout, /IGNORED_KIND|ServiceAccount/);
  assert.match(quiet.stdout, /1 info \(shown with --verbose\)/);
  const verbose = await trellis(['analyze', '--verbose', '-'], unmanaged);
  assert.equal(verbose.code, 0);
  assert.match(verbose.stdout, /^-:1\s+info\s+\w+\s+ServiceAccount default\/web-api/m);
});

test('--mesh-config: an Istio MeshConfig file (or the istio ConfigMap) feeds the analysis; a bad one is a usage error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-analyze-mesh-'));
  try {
    const telemetry = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: mesh-root}
spec:
  tracing: [{providers: [{name: ls}]}]
`;
    writeFileSync(join(dir, 'mesh.yaml'), 'rootNamespace: mesh-root\nextensionProviders:\n- name: ls\n  lightstep: {service: ls.obs.svc.cluster.local, port: 8080}\n');
    writeFileSync(join(dir, 'istio-cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |-\n    extensionProviders:\n    - name: ls\n      lightstep: {}\n');
    writeFileSync(join(dir, 'bad.yaml'), 'outboundTrafficPolicy: {mode: DENY}\n');
    const plain = await trellis(['analyze', '-'], telemetry);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.doesNotMatch(plain.stdout, /DEPRECATED/);
    const withMesh = await trellis(['analyze', '--mesh-config', join(dir, 'mesh.yaml'), '-'], telemetry);
    assert.equal(withMesh.code, 0, withMesh.stdout + withMesh.stderr);
    assert.match(withMesh.stdout, /warning\s+DEPRECATED\s+Telemetry mesh-root\/mesh-default\s+tracing provider 'ls' is a lightstep provider/);
    const withConfigMap = await trellis(['analyze', '--mesh-config', join(dir, 'istio-cm.yaml'), '-'], telemetry);
    assert.match(withConfigMap.stdout, /DEPRECATED/);
    const bad = await trellis(['analyze', '--mesh-config', join(dir, 'bad.yaml'), '-'], telemetry);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yaml: outboundTrafficPolicy\.mode: expected ALLOW_ANY or REGISTRY_ONLY/);
    const missing = await trellis(['analyze', '--mesh-config', join(dir, 'nope.yaml'), '-'], telemetry);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--mesh-config .*nope\.yaml: cannot read: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
