/**
 * PERMISSIVE -> STRICT under continuous load, the migration Istio users fear: a mesh client (through
 * its sidecar, auto-mTLS) and a plaintext client (straight at the backend's inbound port) both send
 * requests non-stop. In PERMISSIVE both succeed, `trellis mtls` names the plaintext client and
 * `trellis analyze` warns that the STRICT policy about to be applied would cut it off; the
 * PeerAuthentication flips to STRICT; from then on only the mesh client succeeds, and it sees zero
 * errors across the flip. Bounded: each loop stops after its phase or 4,000 requests.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { stopAll, waitFor } from './support/mesh.ts';
import { startMtlsMesh } from './support/mtls-mesh.ts';
import { repoRoot } from './support/mesh.ts';
import { join } from 'node:path';

after(() => stopAll());

interface Tally { ok: number; failed: number; errors: string[] }

/** Requests in a loop (4 at a time, keep-alive) until `stop()` or `max`; never throws. */
function load(port: number, headers: Record<string, string>, max: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const t: Tally = { ok: 0, failed: 0, errors: [] };
  let stopped = false;
  let sent = 0;
  const one = () => new Promise<void>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/load', agent, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => {
        if (res.statusCode === 200) t.ok++;
        else {
          t.failed++;
          if (t.errors.length < 5) t.errors.push(`HTTP ${res.statusCode} ${body.slice(0, 200)}`);
        }
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      t.failed++;
      if (t.errors.length < 5) t.errors.push(e.message);
      resolve();
    });
    req.end();
  });
  const worker = async () => {
    while (!stopped && sent < max) {
      sent++;
      await one();
    }
  };
  const done = Promise.all([worker(), worker(), worker(), worker()]);
  return { tally: t, stop: async () => { stopped = true; await done; agent.destroy(); } };
}

function trellisMtls(admin: number): Promise<{ rows: { port: string; mode: string; plaintextClients: { client: string }[]; meshClients: { client: string }[]; plaintextRequests: number }[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(repoRoot, 'bin/trellis.js'), 'mtls', '--admin', `127.0.0.1:${admin}`, '-o', 'json'], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
  });
}

function trellisAnalyze(admin: number, paths: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin/trellis.js'), 'analyze', '--admin', `127.0.0.1:${admin}`, ...paths], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1, out: `${stdout}${stderr}` });
    });
  });
}

test('PERMISSIVE -> STRICT under load: the plaintext client is named, then cut off; the mesh client sees zero errors', async () => {
  const mesh = await startMtlsMesh();
  after(() => mesh.close());
  const meshHeaders = { host: 'backend.default.svc.cluster.local:8080', 'user-agent': 'mesh-client/1.0' };
  await waitFor('mesh path up', async () => new Promise<boolean | undefined>((r) => http.get({ host: '127.0.0.1', port: mesh.outboundPort, path: '/', headers: meshHeaders }, (res) => { res.resume(); r(res.statusCode === 200 || undefined); }).on('error', () => r(undefined))), 30_000, 200);

  const meshLoad = load(mesh.outboundPort, meshHeaders, 4000);
  const plainBefore = load(mesh.inboundPort, { 'user-agent': 'legacy-batch-job/1.0' }, 4000);
  await waitFor('traffic in PERMISSIVE', () => (meshLoad.tally.ok > 100 && plainBefore.tally.ok > 100) || undefined, 60_000, 100);
  await plainBefore.stop();
  assert.equal(plainBefore.tally.failed, 0, `plaintext in PERMISSIVE: ${plainBefore.tally.errors.join('; ')}`);

  const before = await trellisMtls(mesh.backend.ports.admin);
  const row = before.rows.find((r) => r.port === '8080');
  assert.equal(row?.mode, 'PERMISSIVE');
  assert.ok(row!.plaintextClients.some((c) => /legacy-batch-job\/1\.0/.test(c.client)), JSON.stringify(row));
  assert.ok(row!.meshClients.some((c) => c.client === 'cluster.local/ns/default/sa/frontend'), JSON.stringify(row));

  const strict = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: backend-strict, namespace: default}\nspec:\n  selector: {matchLabels: {app: backend}}\n  mtls: {mode: STRICT}\n';
  // Before flipping: `trellis analyze` over the config plus the STRICT policy warns that it cuts off the client the sidecar saw.
  writeFileSync(join(mesh.dir, 'strict-candidate.yaml'), strict);
  const analyzed = await trellisAnalyze(mesh.backend.ports.admin, [mesh.cp.configDir, join(mesh.dir, 'strict-candidate.yaml')]);
  assert.equal(analyzed.code, 0, analyzed.out);
  assert.match(analyzed.out, /warning\s+MTLS_PLAINTEXT_CLIENTS\s+PeerAuthentication default\/backend-strict\s+makes 127\.0\.0\.1:\d+ port 8080 STRICT, but it took \d+ plaintext request\(s\) in the last 10 min from 127\.0\.0\.1 legacy-batch-job\/1\.0/, analyzed.out);

  const okAtFlip = meshLoad.tally.ok;
  mesh.cp.write('strict.yaml', strict);
  // The flip is in force once a fresh plaintext connection is refused.
  await waitFor('STRICT in force', () => new Promise<boolean | undefined>((r) => http.get({ host: '127.0.0.1', port: mesh.inboundPort, path: '/', agent: false }, (res) => { res.resume(); r(undefined); }).on('error', () => r(true))), 30_000, 100);
  const plainAfter = load(mesh.inboundPort, { 'user-agent': 'legacy-batch-job/1.0' }, 200);
  // Keep the mesh client going well past the flip (listener drain included).
  await waitFor('mesh traffic after the flip', () => meshLoad.tally.ok > okAtFlip + 500 || undefined, 60_000, 100);
  await Promise.all([meshLoad.stop(), plainAfter.stop()]);
  assert.equal(plainAfter.tally.ok, 0, 'STRICT: plaintext never succeeds');
  assert.ok(plainAfter.tally.failed > 0);
  assert.equal(meshLoad.tally.failed, 0, `mesh client errors across the flip: ${meshLoad.tally.errors.join('; ')}`);
  const after2 = await trellisMtls(mesh.backend.ports.admin);
  assert.equal(after2.rows.find((r) => r.port === '8080')?.mode, 'STRICT');
  console.log(`mesh client: ${meshLoad.tally.ok} ok, ${meshLoad.tally.failed} failed (${meshLoad.tally.ok - okAtFlip} after the flip); plaintext after STRICT: ${plainAfter.tally.failed} refused, 0 ok`);
});
