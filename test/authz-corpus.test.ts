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
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Cleanups } from './support/processes.ts';
import { skipUnlessTools } from './support/skip.ts';
import { sendRaw, startSidecarPair, type RawResponse, type SidecarPair } from './authz/sidecar-pair.ts';
import { corpus, type CorpusCase, type Decision } from './authz/corpus.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

function decisionOf(r: RawResponse): Decision | string {
  if (r.status === 200) return 'allow';
  if (r.status === 403) return 'deny';
  if (r.status === 400) return 'reject';
  return `status ${r.status}`;
}

let pair: SidecarPair;

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

before(async () => {
  if (skipUnlessTools('envoy')) return;
  pair = await startSidecarPair(cleanups, { 'policies.yaml': readFileSync(new URL('./authz/authz-policies.yaml', import.meta.url), 'utf8') }, corpus[0]);
});

/** Runs `cases` through one sidecar; returns what differs from the documented decisions (and any admin path the app saw). */
async function run(kind: 'trellis' | 'envoy', cases: readonly CorpusCase[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const c of cases) {
    const before = pair.received[kind].length;
    const r = await sendRaw(pair.port[kind], c);
    const got = decisionOf(r);
    if (got !== c.expect) wrong.push(`${c.name} (${c.method ?? 'GET'} ${c.target}): ${kind} ${got}, expected ${c.expect}`);
    else if (kind === 'trellis' && c.expect === 'deny') {
      const want = `RBAC: access denied by AuthorizationPolicy ${c.policy}`;
      if (!r.body.startsWith(want) || r.headers['x-trellis-policy'] !== c.policy) wrong.push(`${c.name}: body '${r.body}', x-trellis-policy '${r.headers['x-trellis-policy']}', expected ${c.policy}`);
    }
    for (const { url } of pair.received[kind].slice(before)) if (isAdminPath(url)) wrong.push(`${c.name}: the app behind ${kind} received ${url}`);
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
