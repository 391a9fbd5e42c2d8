/**
 * Must-show: the authorization corpus (test/authz/corpus.ts, 73 requests of path, method, header
 * and encoding tricks) against ALLOW and DENY AuthorizationPolicies, through a Trellis sidecar and
 * a stock Envoy sidecar fed by the same `trellis control`, once per MeshConfig pathNormalization
 * mode (BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES). Each request gets its documented decision
 * on both data planes (so the translation is right for both), no request reaches the app with an
 * admin path, and every Trellis denial names the AuthorizationPolicy that decided.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cleanups, tempDir } from './support/processes.ts';
import { skipUnlessTools } from './support/skip.ts';
import { sendRaw, startSidecarPair, type RawResponse, type SidecarPair } from './authz/sidecar-pair.ts';
import { corpus, outcomeOf, PathModes, type CorpusCase, type Decision, type PathMode } from './authz/corpus.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

function decisionOf(r: RawResponse): Decision | string {
  if (r.status === 200) return 'allow';
  if (r.status === 403) return 'deny';
  if (r.status === 400) return 'reject';
  return `status ${r.status}`;
}

/** True for a path an admin handler would serve (decoded, dot segments resolved, case-folded). */
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

/** Runs the corpus through one sidecar of `pair`; returns what differs from the documented decisions (and any admin path the app saw). */
async function run(pair: SidecarPair, mode: PathMode, kind: 'trellis' | 'envoy', cases: readonly CorpusCase[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const c of cases) {
    const want = outcomeOf(c, mode, kind);
    const before = pair.received[kind].length;
    const r = await sendRaw(pair.port[kind], c);
    const got = decisionOf(r);
    if (got !== want.expect) wrong.push(`${c.name} (${c.method ?? 'GET'} ${c.target}): ${kind} ${got}, expected ${want.expect}`);
    else if (kind === 'trellis' && want.expect === 'deny') {
      const body = `RBAC: access denied by AuthorizationPolicy ${want.policy}`;
      if (!r.body.startsWith(body) || r.headers['x-trellis-policy'] !== want.policy) wrong.push(`${c.name} (${c.target}): body '${r.body}', x-trellis-policy '${r.headers['x-trellis-policy']}', expected ${want.policy}`);
    }
    for (const { url } of pair.received[kind].slice(before)) if (isAdminPath(url)) wrong.push(`${c.name}: the app behind ${kind} received ${url}`);
  }
  return wrong;
}

test('the corpus has at least 60 requests over ALLOW and DENY policies', () => {
  assert.ok(corpus.length >= 60, `${corpus.length} cases`);
  assert.ok(corpus.some((c) => c.expect === 'allow') && corpus.some((c) => c.expect === 'deny'));
});

for (const mode of PathModes) {
  describe(`pathNormalization ${mode}`, () => {
    let pair: SidecarPair;
    before(async () => {
      if (skipUnlessTools('envoy')) return;
      const mesh = join(tempDir(cleanups), 'mesh.yaml');
      writeFileSync(mesh, `pathNormalization:\n  normalization: ${mode}\n`);
      pair = await startSidecarPair(cleanups, { 'policies.yaml': readFileSync(new URL('./authz/authz-policies.yaml', import.meta.url), 'utf8') }, corpus[0], ['--mesh-config', mesh]);
    });

    test('stock Envoy fed by trellis control gives every corpus request its documented decision; nothing reaches the app as an admin path', { skip: skipUnlessTools('envoy'), timeout: 120_000 }, async () => {
      assert.deepEqual(await run(pair, mode, 'envoy', corpus), []);
    });

    test('a Trellis sidecar gives the same decisions and names the deciding policy', { skip: skipUnlessTools('envoy'), timeout: 120_000 }, async () => {
      assert.deepEqual(await run(pair, mode, 'trellis', corpus), []);
    });

    test('the Trellis sidecar counts every denial in istio_requests_total (response_code 403), as Istio\'s stats do on Envoy', { skip: skipUnlessTools('envoy') }, async () => {
      const text = await (await fetch(`http://127.0.0.1:${pair.trellisPrometheusPort}/stats/prometheus`)).text();
      const denied = text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('response_code="403"')).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      assert.equal(denied, corpus.filter((c) => outcomeOf(c, mode, 'trellis').expect === 'deny').length);
    });
  });
}
