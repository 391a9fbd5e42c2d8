import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../errors.ts';
import { compileRbac, decide, authorizationPolicyOf } from './rbac-engine.ts';
import type { RbacInput } from './rbac-matchers.ts';
import { compileUriTemplate } from './uri-template.ts';
import { startBackend, startProxy, request1, hcmConfig } from '../../http/testing/harness.ts';
import { StaticClusterManager } from '../../http/testing/static-cluster-manager.ts';

function input(over: Partial<RbacInput> & { path?: string; method?: string; headers?: Record<string, string>; authority?: string } = {}): RbacInput {
  const { path = '/', method = 'GET', headers = {}, authority = 'svc', ...rest } = over;
  return {
    http: { path, method, headers, authority, scheme: 'http' },
    directRemoteIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: '10.0.0.9', destinationPort: 8080,
    sni: undefined, peerPrincipal: undefined, metadata: () => undefined,
    ...rest,
  };
}

test('permissions and principals: and/or/not, headers, url_path without query, ports, CIDRs, principals, metadata', () => {
  const e = compileRbac({
    action: 'DENY',
    policies: {
      'ns[shop]-policy[deny-admin]-rule[0]': {
        permissions: [{ and_rules: { rules: [
          { or_rules: { rules: [{ url_path: { path: { prefix: '/admin' } } }, { uri_template: { name: 'uri-template', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig', path_template: '/api/{*}/secret' } } }] } },
          { not_rule: { header: { name: ':method', string_match: { exact: 'OPTIONS' } } } },
          { destination_port: 8080 },
        ] } }],
        principals: [{ and_ids: { ids: [
          { not_id: { direct_remote_ip: { address_prefix: '192.168.0.0', prefix_len: 16 } } },
          { or_ids: { ids: [{ any: true }] } },
        ] } }],
      },
      'ns[shop]-policy[jwt]-rule[0]': {
        permissions: [{ any: true }],
        principals: [{ metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: 'groups' }], value: { or_match: { value_matchers: [{ list_match: { one_of: { string_match: { exact: 'banned' } } } }, { string_match: { exact: 'banned' } }] } } } }],
      },
      'ns[shop]-policy[mtls]-rule[0]': {
        permissions: [{ any: true }],
        principals: [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/shop/sa/evil' } } }],
      },
    },
  }, 'rules');
  const denied = (i: RbacInput) => decide(e, i).policy;
  assert.equal(denied(input({ path: '/admin/x?y=1' })), 'ns[shop]-policy[deny-admin]-rule[0]');
  assert.equal(denied(input({ path: '/public?/admin' })), undefined, 'query is not part of url_path');
  assert.equal(denied(input({ path: '/admin', method: 'OPTIONS' })), undefined);
  assert.equal(denied(input({ path: '/admin', destinationPort: 9090 })), undefined);
  assert.equal(denied(input({ path: '/admin', directRemoteIp: '192.168.4.4' })), undefined);
  assert.equal(denied(input({ path: '/api/v1/secret' })), 'ns[shop]-policy[deny-admin]-rule[0]');
  assert.equal(denied(input({ path: '/api/v1/x/secret' })), undefined, '{*} is one segment');
  const jwt = (groups: unknown) => input({ metadata: (ns) => (ns === 'envoy.filters.http.jwt_authn' ? { payload: { groups } } : undefined) });
  assert.equal(denied(jwt(['a', 'banned'])), 'ns[shop]-policy[jwt]-rule[0]');
  assert.equal(denied(jwt('banned')), 'ns[shop]-policy[jwt]-rule[0]');
  assert.equal(denied(jwt(['a'])), undefined);
  assert.equal(denied(input({ peerPrincipal: 'spiffe://cluster.local/ns/shop/sa/evil' })), 'ns[shop]-policy[mtls]-rule[0]');
  assert.equal(authorizationPolicyOf('ns[shop]-policy[deny-admin]-rule[3]'), 'shop/deny-admin');
  assert.equal(authorizationPolicyOf('custom'), 'custom');
});

test('ALLOW admits only matches; LOG admits all; bad config names the field', () => {
  const allow = compileRbac({ policies: { a: { permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }], principals: [{ any: true }] } } }, 'r');
  assert.equal(decide(allow, input()).allowed, true);
  assert.equal(decide(allow, input({ method: 'POST' })).allowed, false);
  const log = compileRbac({ action: 'LOG', policies: {} }, 'r');
  assert.equal(decide(log, input()).allowed, true);
  for (const [cfg, msg] of [
    [{ action: 'NOPE' }, /r\.action: unknown action/],
    [{ policies: { a: { permissions: [{ bogus: 1 }], principals: [{ any: true }] } } }, /r\.policies\["a"\]\.permissions\[0\]: unsupported permission rule \(bogus\)/],
    [{ policies: { a: { permissions: [{ any: true }], principals: [] } } }, /principals: at least one principal/],
    [{ policies: { a: { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: 'x', prefix_len: 8 } }] } } }, /direct_remote_ip: invalid CIDR/],
  ] as const) assert.throws(() => compileRbac(cfg, 'r'), (err: unknown) => hasCode(err, 'HTTP_CONFIG_INVALID') && msg.test((err as Error).message));
});

test('uri templates: {*} one segment, {**} any rest', () => {
  const t = (tpl: string, p: string) => compileUriTemplate(tpl, 'x').test(p);
  assert.equal(t('/a/{*}', '/a/b'), true);
  assert.equal(t('/a/{*}', '/a/'), false);
  assert.equal(t('/a/{*}', '/a/b/c'), false);
  assert.equal(t('/a/{**}', '/a/b/c'), true);
  assert.equal(t('/{**}/x', '/p/q/x'), true);
  assert.throws(() => compileUriTemplate('/a/{x', 'f'), /f: path template/);
});

test('the RBAC filter answers 403 naming the AuthorizationPolicy, or Envoy\'s plain reply when the listener turns naming off', async (t) => {
  const backend = await startBackend((_req, res) => res.end('ok'));
  const cm = new StaticClusterManager({ b: { endpoints: [backend.endpoint] } });
  const rbac = (action: string, policies: object) => ({ name: 'envoy.filters.http.rbac', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC', rules: { action, policies } } });
  const routes = { virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }] }] };
  const filters = [
    rbac('DENY', { 'ns[shop]-policy[no-admin]-rule[0]': { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] } }),
    rbac('ALLOW', { 'ns[shop]-policy[get-only]-rule[0]': { permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }], principals: [{ any: true }] } }),
  ];
  const named = await startProxy({ clusterManager: cm, config: hcmConfig(routes, filters) });
  const plain = await startProxy({ clusterManager: cm, config: hcmConfig(routes, filters), listenerMetadata: { 'trellis.authz': { name_policy_on_deny: false } } });
  t.after(async () => { await named.close(); await plain.close(); await backend.close(); cm.close(); });
  assert.equal((await request1(named.port, { path: '/x' })).body, 'ok');
  const deny = await request1(named.port, { path: '/admin' });
  assert.equal(deny.status, 403);
  assert.equal(deny.body, 'RBAC: access denied by AuthorizationPolicy shop/no-admin');
  assert.equal(deny.headers['x-trellis-policy'], 'shop/no-admin');
  const notAllowed = await request1(named.port, { path: '/x', method: 'DELETE' });
  assert.equal(notAllowed.status, 403);
  assert.equal(notAllowed.body, 'RBAC: access denied by AuthorizationPolicy shop/get-only (no ALLOW rule matched)');
  const p = await request1(plain.port, { path: '/admin' });
  assert.equal(p.status, 403);
  assert.equal(p.body, 'RBAC: access denied');
  assert.equal(p.headers['x-trellis-policy'], undefined);
});
