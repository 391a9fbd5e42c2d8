/**
 * Mints a token for the demo's RequestAuthentication (issuer https://demo.trellis.dev, audience
 * web-api), signed with the demo key next to this file. For the demo only: the private key is
 * public, so never trust this issuer outside it.
 *
 *   node_modules/.bin/node examples/demo/jwt/mint.ts [--sub alice] [--group admins] [--expires=3600] [--aud web-api]
 *
 * `--expires=-300` mints an expired token (the `=` lets the value start with a dash; Envoy and
 * Trellis allow 60 s of clock skew, so -60 is still accepted).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { importJWK, SignJWT } from 'jose';

const { values } = parseArgs({
  options: { sub: { type: 'string', default: 'alice' }, group: { type: 'string', multiple: true }, expires: { type: 'string', default: '3600' }, aud: { type: 'string', default: 'web-api' } },
});
const jwk = JSON.parse(readFileSync(new URL('./demo-signing-key.jwk', import.meta.url), 'utf8')) as { kid: string };
const key = await importJWK(jwk, 'ES256');
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ groups: values.group ?? ['users'] })
  .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' })
  .setIssuer('https://demo.trellis.dev')
  .setSubject(values.sub!)
  .setAudience(values.aud!)
  .setIssuedAt(now)
  .setExpirationTime(now + Number(values.expires))
  .sign(key);
process.stdout.write(`${token}\n`);
