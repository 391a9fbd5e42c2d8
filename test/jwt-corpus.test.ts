/**
 * Must-show: the JWT corpus. A RequestAuthentication with four issuers (inline keys; keys found
 * by OpenID discovery; keys from a jwksUri; a jwksUri that is down) guards `ratings`, with an
 * AuthorizationPolicy that requires a token on /secure. Every case gets the status Istio and
 * Envoy document (401 for a bad token, 403 for a wrong audience, 200 without a token unless
 * authorization says otherwise), on a Trellis sidecar and on a stock Envoy fed by the same
 * control plane; tokens are accepted from every supported location; claims and the payload reach
 * the app as headers and the token is removed unless forwarded.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { Cleanups, freePort } from './support/processes.ts';
import { skipUnlessTools } from './support/skip.ts';
import { sendRaw, startSidecarPair, type RawRequest, type Side, type SidecarPair } from './authz/sidecar-pair.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
const keys: Record<'a' | 'b' | 'c' | 'other', KeyPair & { jwk: JWK }> = {} as never;
let pair: SidecarPair;
let idpPort = 0;
let yaml = '';
const now = () => Math.floor(Date.now() / 1000);

async function sign(k: keyof typeof keys, kid: string, claims: Record<string, unknown>, o: { iat?: number; exp?: number; nbf?: number } = {}): Promise<string> {
  let j = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).setIssuedAt(o.iat ?? now());
  j = j.setExpirationTime(o.exp ?? now() + 3600);
  if (o.nbf !== undefined) j = j.setNotBefore(o.nbf);
  return j.sign(keys[k].privateKey);
}

function b64(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

before(async () => {
  if (skipUnlessTools('envoy')) return;
  for (const k of ['a', 'b', 'c', 'other'] as const) {
    const kp = await generateKeyPair('RS256', { extractable: true });
    keys[k] = { ...kp, jwk: { ...(await exportJWK(kp.publicKey)), kid: `${k}1`, alg: 'RS256', use: 'sig' } };
  }
  // The identity provider: OpenID discovery for issuer B, a JWKS endpoint for C.
  const idp = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer: `http://127.0.0.1:${idpPort}`, jwks_uri: `http://127.0.0.1:${idpPort}/keys-b` }));
    if (req.url === '/keys-b') return res.end(JSON.stringify({ keys: [keys.b.jwk] }));
    if (req.url === '/keys-c') return res.end(JSON.stringify({ keys: [keys.c.jwk] }));
    if (req.url === '/keys-not-json') return res.end('<html>oops</html>');
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  cleanups.add(() => idp.close());
  idpPort = (idp.address() as net.AddressInfo).port;
  const down = await freePort();
  yaml = `apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: shop }
spec: { ports: [{ name: http, port: 9080 }], selector: { app: ratings } }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ratings-jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: ratings } }
  jwtRules:
  - issuer: https://a.example
    audiences: [ratings]
    jwks: '${JSON.stringify({ keys: [keys.a.jwk] })}'
    outputClaimToHeaders: [{ header: x-jwt-sub, claim: sub }, { header: x-jwt-team, claim: team.name }]
    outputPayloadToHeader: x-jwt-payload
  - issuer: http://127.0.0.1:${idpPort}
    fromHeaders: [{ name: x-goog-iap-jwt-assertion }]
    fromParams: [token]
    fromCookies: [session]
  - issuer: https://c.example
    jwksUri: http://127.0.0.1:${idpPort}/keys-c
    fromHeaders: [{ name: x-auth, prefix: "Token " }]
    forwardOriginalToken: true
  - issuer: https://down.example
    jwksUri: http://127.0.0.1:${down}/keys
    fromHeaders: [{ name: x-down }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: ratings } }
  action: DENY
  rules:
  - from: [{ source: { notRequestPrincipals: ["*"] } }]
    to: [{ operation: { paths: ["/secure/*"] } }]
`;
  pair = await startSidecarPair(cleanups, { 'ratings.yaml': yaml }, { target: '/ready' });
});

interface JwtCase {
  readonly name: string;
  readonly request: () => Promise<RawRequest>;
  readonly status: number;
  readonly body?: string;
}

const bearer = (t: string): RawRequest => ({ target: '/x', headers: [['authorization', `Bearer ${t}`]] });

const cases: JwtCase[] = [
  { name: 'valid token (Authorization: Bearer)', request: async () => bearer(await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' })), status: 200 },
  { name: 'no token passes authentication', request: async () => ({ target: '/x' }), status: 200 },
  { name: 'no token on a path authorization protects', request: async () => ({ target: '/secure/data' }), status: 403 },
  { name: 'valid token on a path authorization protects', request: async () => ({ ...bearer(await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' })), target: '/secure/data' }), status: 200 },
  { name: 'expired', request: async () => bearer(await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' }, { iat: now() - 7200, exp: now() - 3600 })), status: 401, body: 'Jwt is expired' },
  { name: 'not yet valid', request: async () => bearer(await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' }, { nbf: now() + 3600 })), status: 401, body: 'Jwt not yet valid' },
  { name: 'wrong issuer', request: async () => bearer(await sign('a', 'a1', { iss: 'https://evil.example', sub: 'alice', aud: 'ratings' })), status: 401, body: 'Jwt issuer is not configured' },
  { name: 'wrong audience', request: async () => bearer(await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'billing' })), status: 403, body: 'Audiences in Jwt are not allowed' },
  { name: 'alg none', request: async () => bearer(`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'https://a.example', sub: 'alice', aud: 'ratings', exp: now() + 3600 })}.`), status: 401 },
  {
    name: 'HS256 signed with the public key as the secret',
    request: async () => {
      const secret = new TextEncoder().encode(JSON.stringify(keys.a.jwk));
      return bearer(await new SignJWT({ iss: 'https://a.example', sub: 'alice', aud: 'ratings' }).setProtectedHeader({ alg: 'HS256', kid: 'a1' }).setExpirationTime(now() + 3600).sign(secret));
    },
    status: 401,
  },
  {
    name: 'tampered signature',
    request: async () => {
      const t = await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' });
      const [h, , s] = t.split('.');
      return bearer(`${h}.${b64({ iss: 'https://a.example', sub: 'admin', aud: 'ratings', exp: now() + 3600 })}.${s}`);
    },
    status: 401,
    body: 'Jwt verification fails',
  },
  { name: 'signed by an unknown key', request: async () => bearer(await sign('other', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' })), status: 401, body: 'Jwt verification fails' },
  { name: 'unknown kid', request: async () => bearer(await sign('a', 'nope', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' })), status: 401, body: "Jwks doesn't have key to match kid or alg from Jwt" },
  { name: 'garbage token', request: async () => bearer('not.a.jwt'), status: 401 },
  { name: 'JWKS endpoint down: a token for that issuer is refused', request: async () => ({ target: '/x', headers: [['x-down', await sign('a', 'a1', { iss: 'https://down.example', sub: 'x' })]] }), status: 401 },
  { name: 'access_token query parameter (default location)', request: async () => ({ target: `/x?access_token=${await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' })}` }), status: 200 },
  { name: 'identity-aware proxy header (keys by OpenID discovery)', request: async () => ({ target: '/x', headers: [['x-goog-iap-jwt-assertion', await sign('b', 'b1', { iss: `http://127.0.0.1:${idpPort}`, sub: 'bob' })]] }), status: 200 },
  { name: 'query parameter fromParams', request: async () => ({ target: `/x?token=${await sign('b', 'b1', { iss: `http://127.0.0.1:${idpPort}`, sub: 'bob' })}` }), status: 200 },
  { name: 'cookie fromCookies', request: async () => ({ target: '/x', headers: [['cookie', `theme=dark; session=${await sign('b', 'b1', { iss: `http://127.0.0.1:${idpPort}`, sub: 'bob' })}`]] }), status: 200 },
  { name: 'header with prefix (keys from jwksUri)', request: async () => ({ target: '/x', headers: [['x-auth', `Token ${await sign('c', 'c1', { iss: 'https://c.example', sub: 'carol' })}`]] }), status: 200 },
  { name: 'header without its prefix is no token', request: async () => ({ target: '/x', headers: [['x-auth', await sign('c', 'c1', { iss: 'https://c.example', sub: 'carol' })]] }), status: 200 },
  { name: 'two rules: issuer B token in issuer A\'s location is refused', request: async () => bearer(await sign('b', 'b1', { iss: `http://127.0.0.1:${idpPort}`, sub: 'bob' })), status: 401 },
  // istiod's requirement is `P0 or P1 ... or AND(Pi or allow_missing)`: one provider satisfied admits the request.
  { name: 'a good token for one rule admits the request despite a bad one for another', request: async () => ({ target: '/x', headers: [['authorization', `Bearer ${await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' })}`], ['x-auth', 'Token garbage.garbage.garbage']] }), status: 200 },
  { name: 'bad tokens for two rules', request: async () => ({ target: '/x', headers: [['x-goog-iap-jwt-assertion', 'garbage.garbage.garbage'], ['x-auth', 'Token garbage.garbage.garbage']] }), status: 401 },
];

for (const side of ['trellis', 'envoy'] as const satisfies readonly Side[]) {
  test(`JWT corpus through a ${side} sidecar: each case gets its documented status`, { skip: skipUnlessTools('envoy'), timeout: 120_000 }, async () => {
    const wrong: string[] = [];
    for (const c of cases) {
      const r = await sendRaw(pair.port[side], await c.request());
      if (r.status !== c.status) wrong.push(`${c.name}: ${r.status} ${r.body.slice(0, 80)}, expected ${c.status}`);
      else if (c.body !== undefined && r.body !== c.body) wrong.push(`${c.name}: body '${r.body}', expected '${c.body}'`);
      else if (r.status === 401 && !/^Bearer realm="http:\/\/ratings\.shop\/[^"]*", error="invalid_token"$/.test(r.headers['www-authenticate'] ?? '')) wrong.push(`${c.name}: www-authenticate '${r.headers['www-authenticate']}'`);
    }
    assert.deepEqual(wrong, []);
  });
}

test('claims and the payload reach the app as headers; the token is removed unless forwarded; forged claim headers are dropped', { skip: skipUnlessTools('envoy'), timeout: 60_000 }, async () => {
  const token = await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings', team: { name: 'checkout' } });
  const c = await sign('c', 'c1', { iss: 'https://c.example', sub: 'carol' });
  for (const side of ['trellis', 'envoy'] as const) {
    const n = pair.received[side].length;
    assert.equal((await sendRaw(pair.port[side], bearer(token))).status, 200);
    const got = pair.received[side][n].headers;
    assert.equal(got['x-jwt-sub'], 'alice', side);
    assert.equal(got['x-jwt-team'], 'checkout', side);
    assert.deepEqual(JSON.parse(Buffer.from(String(got['x-jwt-payload']), 'base64url').toString()).sub, 'alice', side);
    assert.equal(got.authorization, undefined, `${side}: forwardOriginalToken false removes the token`);
    assert.equal((await sendRaw(pair.port[side], { target: '/x', headers: [['x-auth', `Token ${c}`]] })).status, 200);
    assert.equal(pair.received[side][n + 1].headers['x-auth'], `Token ${c}`, `${side}: forwardOriginalToken keeps it`);
  }
  // Trellis goes further than Envoy here: a request without a token cannot bring its own claim headers.
  const n = pair.received.trellis.length;
  assert.equal((await sendRaw(pair.port.trellis, { target: '/x', headers: [['x-jwt-sub', 'admin']] })).status, 200);
  assert.equal(pair.received.trellis[n].headers['x-jwt-sub'], undefined);
});

interface Diag { severity: string; code: string; message: string; file?: string; resource?: { kind: string; namespace: string; name: string }; fieldPath?: string }

test('bad input: an inline JWKS that is not JSON, a fetched JWKS that is not JSON, a policy with an unknown field; each named, the last good config keeps serving', { skip: skipUnlessTools('envoy'), timeout: 120_000 }, async () => {
  const diagnostics = async () => (await (await fetch(`${pair.cp.url}/debug/diagnostics`)).json()) as Diag[];
  const { writeConfig } = await import('./support/mesh-yaml.ts');
  const { waitFor } = await import('./support/processes.ts');
  const good = await sign('a', 'a1', { iss: 'https://a.example', sub: 'alice', aud: 'ratings' });
  // 1. The RequestAuthentication's inline jwks becomes garbage.
  writeConfig(pair.configDir, 'ratings.yaml', yaml.replace(/jwks: '[^']*'/, "jwks: 'not json {'"));
  const bad = await waitFor('JWKS_INVALID', async () => (await diagnostics()).find((d) => d.code === 'JWKS_INVALID'), 20_000);
  assert.equal(bad.severity, 'error');
  assert.match(bad.file ?? '', /ratings\.yaml$/);
  assert.deepEqual(bad.resource, { kind: 'RequestAuthentication', namespace: 'shop', name: 'ratings-jwt' });
  assert.equal(bad.fieldPath, 'spec.jwtRules[0].jwks');
  assert.match(bad.message, /not JSON/);
  assert.ok((await diagnostics()).some((d) => d.code === 'LAST_KNOWN_GOOD' && d.resource?.name === 'ratings-jwt'));
  // 2. An AuthorizationPolicy with a misspelt field.
  writeConfig(pair.configDir, 'typo.yaml', `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: typo, namespace: shop }
spec:
  selector: { matchLabels: { app: ratings } }
  action: DENY
  rules:
  - to: [{ operation: { pathz: ["/x"] } }]
`);
  const typo = await waitFor('UNKNOWN_FIELD', async () => (await diagnostics()).find((d) => d.code === 'UNKNOWN_FIELD' && d.resource?.name === 'typo'), 20_000);
  assert.equal(typo.fieldPath, 'spec.rules[0].to[0].operation.pathz');
  assert.match(typo.file ?? '', /typo\.yaml$/);
  // Both sidecars still enforce the last good config: the old keys verify, the policy that never was is not in force.
  for (const side of ['trellis', 'envoy'] as const) {
    assert.equal((await sendRaw(pair.port[side], bearer(good))).status, 200, side);
    assert.equal((await sendRaw(pair.port[side], bearer(good.slice(0, -4) + 'AAAA'))).status, 401, side);
    assert.equal((await sendRaw(pair.port[side], { target: '/secure/x' })).status, 403, side);
    assert.equal((await sendRaw(pair.port[side], { target: '/x' })).status, 200, side);
  }
  // 3. A jwksUri that answers with something that is not a JWKS: named, and its tokens are refused.
  writeConfig(pair.configDir, 'ratings.yaml', yaml.replace('jwksUri: http://127.0.0.1:' + idpPort + '/keys-c', 'jwksUri: http://127.0.0.1:' + idpPort + '/keys-not-json'));
  const fetched = await waitFor('JWKS_FETCH_FAILED', async () => (await diagnostics()).find((d) => d.code === 'JWKS_FETCH_FAILED' && /keys-not-json/.test(d.message)), 20_000);
  assert.equal(fetched.fieldPath, 'spec.jwtRules[2].jwksUri');
  assert.deepEqual(fetched.resource, { kind: 'RequestAuthentication', namespace: 'shop', name: 'ratings-jwt' });
  assert.match(fetched.message, /not JSON/);
  const c = await sign('c', 'c1', { iss: 'https://c.example', sub: 'carol' });
  for (const side of ['trellis', 'envoy'] as const) {
    await waitFor(`${side} refuses issuer C`, async () => (await sendRaw(pair.port[side], { target: '/x', headers: [['x-auth', `Token ${c}`]] })).status === 401, 20_000, 200);
    assert.equal((await sendRaw(pair.port[side], bearer(good))).status, 200, side);
  }
});
