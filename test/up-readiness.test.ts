/**
 * A Workload's readinessPath, as Kubernetes' readinessProbe: `trellis up` registers a replica only
 * once GET readinessPath answers 2xx, keeps probing every 2 s, takes the replica out of its
 * Service's endpoints after three failures in a row and puts it back when it answers again.
 * Real binary, one app per replica whose readiness a file switches.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, readStateFile, trellis } from './support/trellis-up.ts';

const APP = `import http from 'node:http';
import { existsSync } from 'node:fs';
http.createServer((req, res) => {
  const unready = existsSync(process.env.UNREADY_FILE + '.' + process.env.POD_NAME.split('-')[1]);
  res.writeHead(req.url === '/ready' && unready ? 503 : 200);
  res.end(process.env.POD_NAME);
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

describe('Workload readinessPath: registered when ready, out of the endpoints after 3 failed probes, back when it passes', { timeout: 180_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'trellis-readiness-'));
  const stateDir = join(tmp, 'state');
  const flag = join(tmp, 'unready');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: join(tmp, 'xdg') };
  const registrations = () => readdirSync(join(stateDir, 'registrations')).filter((f) => f.endsWith('.yaml'));

  before(async () => {
    writeFileSync(join(tmp, 'app.mjs'), APP);
    // Replica names are flip-<workload letter>-<hex>: the app reads its letter from POD_NAME.
    const w = (letter: string) => `apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata: {name: flip${letter}, labels: {app: flip}}
spec:
  command: [${JSON.stringify(process.execPath)}, app.mjs]
  env: {UNREADY_FILE: ${JSON.stringify(flag)}}
  readinessPath: /ready
  ports: [{port: 8080, protocol: HTTP}]
`;
    writeFileSync(join(tmp, 'mesh.yaml'), `apiVersion: v1
kind: Service
metadata: {name: flip}
spec:
  selector: {app: flip}
  ports: [{name: http, port: 8080}]
---
${w('-a')}---
${w('-b')}`);
    // flip-a starts unready: it must not be registered until it answers.
    writeFileSync(`${flag}.a`, '');
    const up = trellis(['up', '--detach', '--config', join(tmp, 'mesh.yaml'), '--state-dir', stateDir, '--start-timeout', '60'], { cwd: tmp, env, timeoutMs: 120_000 });
    const aRunsUnregistered = () => existsSync(join(stateDir, 'state.json')) && existsSync(join(stateDir, 'registrations'))
      && readStateFile(stateDir).processes.some((p) => p.workload === 'flip-a' && p.role === 'workload') && !registrations().some((f) => f.includes('flip-a'));
    assert.ok(await eventually(30_000, async () => aRunsUnregistered()), 'flip-a runs, unregistered');
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(aRunsUnregistered(), 'flip-a stays out of the endpoints while its probe fails');
    rmSync(`${flag}.a`);
    const r = await up;
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  after(async () => {
    await trellis(['down', '--state-dir', stateDir], { env });
    rmSync(tmp, { recursive: true, force: true });
  });

  test('both replicas are registered once ready', () => {
    const files = registrations();
    assert.equal(files.length, 2, files.join(', '));
  });

  test('a replica failing its probe three times leaves the endpoints, and comes back', async () => {
    writeFileSync(`${flag}.b`, '');
    assert.ok(await eventually(20_000, async () => registrations().length === 1), 'flip-b unregistered');
    assert.ok(registrations()[0].includes('flip-a'));
    assert.match(readFileSync(join(stateDir, 'logs/supervisor.log'), 'utf8'), /flip-b-\w+ failed its readiness probe 3 times \(GET \/ready answered 503\)/);
    rmSync(`${flag}.b`);
    assert.ok(await eventually(20_000, async () => registrations().length === 2), 'flip-b registered again');
    assert.match(readFileSync(join(stateDir, 'logs/supervisor.log'), 'utf8'), /flip-b-\w+ passes its readiness probe again/);
  });
});
