/**
 * Must-show: the authorization corpus (test/authz/corpus.ts, 70 requests of path, method, header
 * and encoding tricks) against ALLOW and DENY AuthorizationPolicies, through a Trellis sidecar and
 * a stock Envoy sidecar fed by the same `trellis control`. Each request gets its documented
 * decision on both data planes (so the translation is right for both), no request reaches the app
 * with an admin path, and every Trellis denial names the AuthorizationPolicy that decided. The
 * cases whose decision rests on path normalization run as `todo` for Trellis until the connection
 * manager normalizes paths (issue 18).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Cleanups, freePort, startControlProcess, startEnvoy, tempDir, waitFor } from './support/processes.ts';
import { startProxy } from './support/mesh.ts';
import { writeConfig } from './support/mesh-yaml.ts';
import { skipUnlessTools } from './support/tools.ts';
import { corpus, type CorpusCase, type Decision } from './authz/corpus.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

interface RawResponse { status: number; headers: Record<string, string>; body: string }

/** Sends `c` byte for byte on a fresh connection and parses the response head. */
function send(port: number, c: CorpusCase): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const headers = c.headers ?? [];
    const hasHost = headers.some(([k]) => k.toLowerCase() === 'host');
    const lines = [`${c.method ?? 'GET'} ${c.target} HTTP/1.1`, ...(hasHost ? [] : ['host: ratings.shop']), ...headers.map(([k, v]) => `${k}: ${v}`)];
    if (c.body !== undefined && !headers.some(([k]) => k.toLowerCase() === 'content-length' || k.toLowerCase() === 'transfer-encoding')) lines.push(`content-length: ${Buffer.byteLength(c.body)}`);
    lines.push('connection: close');
    let data = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m === null) return resolve({ status: 0, headers: {}, body: data });
      const [head, ...rest] = data.split('\r\n\r\n');
      const h: Record<string, string> = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) h[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers: h, body: rest.join('\r\n\r\n') });
    };
    s.setTimeout(10_000, () => s.destroy(new Error(`timeout on ${c.name}`)));
    s.on('data', (d) => {
      data += d.toString('latin1');
      // Done once the head and a content-length body are in (a proxy may linger before closing).
      const end = data.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end));
      if (end >= 0 && (c.method === 'HEAD' || (len !== null && data.length - end - 4 >= Number(len[1])))) finish();
    });
    s.on('error', (err) => (done ? undefined : reject(err)));
    s.on('close', finish);
    s.write(`${lines.join('\r\n')}\r\n\r\n${c.body ?? ''}`);
  });
}

function decisionOf(r: RawResponse): Decision | string {
  if (r.status === 200) return 'allow';
  if (r.status === 403) return 'deny';
  if (r.status === 400) return 'reject';
  return `status ${r.status}`;
}

let trellisPort = 0;
let envoyPort = 0;
/** Paths the app behind each sidecar received, newest last. */
const seen: Record<'trellis' | 'envoy', string[]> = { trellis: [], envoy: [] };

/** True for a path an admin handler would serve (decoded, slashes merged, case-folded). */
function isAdminPath(url: string): boolean {
  let p = url.split('?')[0];
  try {
    p = decodeURIComponent(p);
  } catch {
    // keep as sent
  }
  const segs: string[] = [];
  for (const s of p.toLowerCase().split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segs.pop();
    else segs.push(s);
  }
  return segs[0] === 'admin';
}

async function startApp(kind: 'trellis' | 'envoy'): Promise<number> {
  const app = http.createServer((req, res) => {
    seen[kind].push(req.url ?? '');
    res.end(`app saw ${req.url}`);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  cleanups.add(() => app.close());
  return (app.address() as net.AddressInfo).port;
}

before(async () => {
  if (skipUnlessTools('envoy')) return;
  const dir = tempDir(cleanups);
  const configDir = `${dir}/config`;
  (await import('node:fs')).mkdirSync(configDir);
  writeConfig(configDir, 'policies.yaml', readFileSync(new URL('./authz/authz-policies.yaml', import.meta.url), 'utf8'));
  const cp = await startControlProcess(cleanups, configDir, ['--log-level', 'warn']);
  [trellisPort, envoyPort] = [await freePort(), await freePort()];
  // Each sidecar's outbound 9080 goes to a free port too, so the two can share the machine.
  const meta = (inbound: number, outbound: number, app: number) => ({
    NAMESPACE: 'shop', LABELS: { app: 'ratings' }, SERVICE_ACCOUNT: 'ratings',
    TRELLIS_INBOUND_ADDRESS: '127.0.0.1', TRELLIS_INBOUND_PORTS: { 9080: inbound }, TRELLIS_APP_PORTS: { 9080: app }, TRELLIS_OUTBOUND_PORTS: { 9080: outbound },
  });
  const trellis = await startProxy(cp, { namespace: 'shop', workload: 'ratings-trellis', labels: { app: 'ratings' }, metadata: meta(trellisPort, await freePort(), await startApp('trellis')) });
  cleanups.add(() => trellis.stop());
  await startEnvoy(cleanups, { xdsPort: cp.xdsPort, nodeId: 'sidecar~127.0.0.1~ratings-envoy.shop~shop.svc.cluster.local', metadata: meta(envoyPort, await freePort(), await startApp('envoy')), dir });
  for (const port of [trellisPort, envoyPort]) {
    await waitFor(`inbound listener on ${port === trellisPort ? 'trellis' : 'envoy'} port ${port}`, async () => {
      const r = await send(port, corpus[0]);
      if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.slice(0, 200)}`);
      return true;
    }, 60_000, 200);
  }
});

/** Runs `cases` through one sidecar; returns what differs from the documented decisions (and any admin path the app saw). */
async function run(kind: 'trellis' | 'envoy', cases: readonly CorpusCase[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const c of cases) {
    const before = seen[kind].length;
    const r = await send(kind === 'trellis' ? trellisPort : envoyPort, c);
    const got = decisionOf(r);
    if (got !== c.expect) wrong.push(`${c.name} (${c.method ?? 'GET'} ${c.target}): ${kind} ${got}, expected ${c.expect}`);
    else if (kind === 'trellis' && c.expect === 'deny') {
      const want = `RBAC: access denied by AuthorizationPolicy ${c.policy}`;
      if (!r.body.startsWith(want) || r.headers['x-trellis-policy'] !== c.policy) wrong.push(`${c.name}: body '${r.body}', x-trellis-policy '${r.headers['x-trellis-policy']}', expected ${c.policy}`);
    }
    for (const url of seen[kind].slice(before)) if (isAdminPath(url)) wrong.push(`${c.name}: the app behind ${kind} received ${url}`);
  }
  return wrong;
}

test('the corpus has at least 60 requests over ALLOW and DENY policies', () => {
  assert.ok(corpus.length >= 60, `${corpus.length} cases`);
  assert.ok(corpus.some((c) => c.expect === 'allow') && corpus.some((c) => c.expect === 'deny'));
});

test('stock Envoy fed by trellis control gives every corpus request its documented decision; nothing reaches the app as an admin path', { skip: skipUnlessTools('envoy'), timeout: 120_000 }, async () => {
  assert.deepEqual(await run('envoy', corpus), []);
});

test('a Trellis sidecar gives the same decisions and names the deciding policy', { skip: skipUnlessTools('envoy'), timeout: 120_000 }, async () => {
  assert.deepEqual(await run('trellis', corpus.filter((c) => c.normalized !== true)), []);
});

test('a Trellis sidecar: the cases that need the connection manager to normalize paths', {
  skip: skipUnlessTools('envoy'),
  todo: 'path normalization in the HTTP connection manager (normalize_path, merge_slashes) comes with issue 18',
  timeout: 120_000,
}, async () => {
  assert.deepEqual(await run('trellis', corpus.filter((c) => c.normalized === true)), []);
});
