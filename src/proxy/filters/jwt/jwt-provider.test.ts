/**
 * jose is loaded with the first jwt_authn provider, not with the proxy: a fresh process that
 * loads the data plane and every filter has no jose module, and its first provider still
 * verifies a token on first use (and refuses a forged one).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

const child = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ load(url, ctx, next) { loaded.push(url); return next(url, ctx); } });
const jose = () => loaded.filter((u) => u.includes('/node_modules/jose/')).length;
await import(new URL('src/proxy/data-plane.ts', process.env.ROOT).href);
await import(new URL('src/proxy/filters/registry.ts', process.env.ROOT).href);
const { compileProvider } = await import(new URL('src/proxy/filters/jwt/jwt-provider.ts', process.env.ROOT).href);
const before = jose();
const p = compileProvider('idp', { issuer: 'https://idp.test', local_jwks: { inline_string: process.env.JWKS } }, 'providers.idp');
const good = await p.verify(process.env.TOKEN, Math.floor(Date.now() / 1000));
const forged = await p.verify(process.env.FORGED, Math.floor(Date.now() / 1000));
console.log(JSON.stringify({ before, after: jose(), good: good.ok, forged: forged.ok ? 'ok' : forged.status }));
`;

test('jose loads with the first jwt_authn provider and verifies its first token', async () => {
  const kp = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://idp.test').setExpirationTime('1h').sign(kp.privateKey);
  const [h, , s] = token.split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'mallory', iss: 'https://idp.test' })).toString('base64url')}.${s}`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', child], {
    env: { ...process.env, ROOT: new URL('../../../../', import.meta.url).href, JWKS: JSON.stringify({ keys: [jwk] }), TOKEN: token, FORGED: forged },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { before: number; after: number; good: boolean; forged: string };
  assert.equal(r.before, 0, 'the data plane and its filters load no jose module');
  assert.ok(r.after > 0, 'the first provider loads jose');
  assert.equal(r.good, true);
  assert.equal(r.forged, 'Jwt verification fails');
});
