import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../../errors.ts';
import { Metadata } from '@grpc/grpc-js';
import { tokenReviewAuthenticator, type TokenReviewStatus } from './token-review.ts';
import { TlsCallMark } from '../ca/ca-tls.ts';

const call = { metadata: new Metadata() };

/** A JWT-shaped token with these claims (the reviewer below decides, as the API server would). */
function jwt(claims: Record<string, unknown>): string {
  const b = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b({ alg: 'ES256' })}.${b(claims)}.c2ln`;
}

const ok = (ns: string, sa: string, extra: Record<string, string[]> = {}): TokenReviewStatus => ({
  authenticated: true, audiences: ['istio-ca'],
  user: { username: `system:serviceaccount:${ns}:${sa}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'], extra },
});

test('an authenticated service-account token names the caller; pod uid is the requester; reviews are cached until the TTL or the token expiry', async () => {
  let now = 1_000_000;
  const asked: string[][] = [];
  const a = tokenReviewAuthenticator({
    review: async (_t, aud) => {
      asked.push([...aud]);
      return ok('shop', 'web', { 'authentication.kubernetes.io/pod-name': ['web-0'], 'authentication.kubernetes.io/pod-uid': ['uid-1'] });
    },
    cacheTtlMs: 30_000, now: () => now,
  });
  const token = jwt({ aud: ['istio-ca'], exp: (now + 10_000) / 1000 });
  assert.deepEqual(await a.authenticate(token, call), { namespace: 'shop', serviceAccount: 'web', authenticator: 'kubernetes-token', requester: 'uid-1', pod: 'web-0' });
  assert.deepEqual(asked, [['istio-ca']]);
  await a.authenticate(token, call);
  assert.equal(asked.length, 1, 'cached');
  now += 11_000; // past the token's exp, though within the cache TTL
  await a.authenticate(token, call);
  assert.equal(asked.length, 2, 'a cached review never outlives the token');
  // Concurrent calls share one review.
  const other = jwt({ aud: ['istio-ca'], exp: now / 1000 + 600 });
  await Promise.all([a.authenticate(other, call), a.authenticate(other, call), a.authenticate(other, call)]);
  assert.equal(asked.length, 3);
});

test('refusals say why and are not cached; a failing TokenReview is CA_AUTH_UNAVAILABLE and never authenticates', async () => {
  const now = Date.now();
  let answer: TokenReviewStatus | Error = { authenticated: false, error: '[invalid bearer token, token audiences ["https://kubernetes.default.svc"] is invalid for the target audiences ["istio-ca"]]' };
  let calls = 0;
  const a = tokenReviewAuthenticator({
    review: async () => {
      calls++;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  const refused = async (token: string, code: string, re: RegExp) => {
    await assert.rejects(a.authenticate(token, call), (e: unknown) => hasCode(e, code) && re.test((e as Error).message), `${code} ${re}`);
  };
  await refused(jwt({ aud: ['https://kubernetes.default.svc'], exp: now / 1000 + 600 }), 'CA_TOKEN_REJECTED', /audience \[https:\/\/kubernetes.default.svc\] is not one the CA accepts \[istio-ca\]/);
  answer = { authenticated: false, error: 'token has expired' };
  await refused(jwt({ aud: ['istio-ca'], exp: now / 1000 - 60 }), 'CA_TOKEN_REJECTED', /token expired at/);
  await refused('not-a-jwt', 'CA_TOKEN_REJECTED', /not a JWT/);
  answer = { authenticated: true, audiences: ['istio-ca'], user: { username: 'alice', groups: ['system:authenticated'] } };
  await refused(jwt({ aud: ['istio-ca'] }), 'CA_TOKEN_REJECTED', /not a service-account token \(user 'alice'\)/);
  answer = { ...ok('shop', 'web'), audiences: [] };
  await refused(jwt({ aud: ['istio-ca'] }), 'CA_TOKEN_REJECTED', /did not confirm the audience/);
  answer = new Error('connect ECONNREFUSED 127.0.0.1:6443');
  const t = jwt({ aud: ['istio-ca'], exp: now / 1000 + 600 });
  await refused(t, 'CA_AUTH_UNAVAILABLE', /TokenReview failed.*ECONNREFUSED/);
  const before = calls;
  answer = ok('shop', 'web');
  assert.equal((await a.authenticate(t, call))?.serviceAccount, 'web', 'the failure was not cached');
  assert.equal(calls, before + 1);
});

test('with a TLS mark, a token that came in plaintext (or with a forged mark) is refused before any review', async () => {
  let reviews = 0;
  const mark = new TlsCallMark();
  const a = tokenReviewAuthenticator({ review: async () => (reviews++, ok('shop', 'web')), tls: mark });
  const token = jwt({ aud: ['istio-ca'] });
  const forged = new Metadata();
  forged.set(TlsCallMark.key, 'guess');
  for (const md of [new Metadata(), forged]) {
    await assert.rejects(a.authenticate(token, { metadata: md }), (e: unknown) => hasCode(e, 'CA_TOKEN_REJECTED') && /accepted only over TLS/.test((e as Error).message));
  }
  assert.equal(reviews, 0);
  // What the TLS port's interceptor does to a call's metadata.
  const viaTls = new Metadata();
  viaTls.set(TlsCallMark.key, 'guess');
  let marked: Metadata | undefined;
  const intercepted = mark.interceptor({} as never, {
    start: (listener: { onReceiveMetadata(md: Metadata): void }) => listener.onReceiveMetadata(viaTls),
  } as never);
  intercepted.start({ onReceiveMetadata: (md: Metadata) => (marked = md), onReceiveMessage() {}, onReceiveHalfClose() {}, onCancel() {} });
  assert.ok(marked !== undefined);
  assert.equal((await a.authenticate(token, { metadata: marked }))?.serviceAccount, 'web');
});
