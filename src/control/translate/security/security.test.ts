import { test } from 'node:test';
import assert from 'node:assert/strict';
import { translate } from '../index.ts';
import { node, snapshotFromYaml } from '../test-support.ts';
import { TypeUrl } from '../../../xds/types.ts';
import { pathTemplateRegex, rbacPolicyOf } from './rbac-rule.ts';

const yaml = `apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: shop }
spec: { ports: [{ name: http, port: 9080 }], selector: { app: ratings } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: shop }
spec:
  selector: { matchLabels: { app: ratings } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin"] } }] }]
`;

function inbound(mesh: Record<string, unknown>) {
  const snap = snapshotFromYaml(yaml, { mesh });
  const proxy = node('sidecar', 'shop', 'ratings-1', { LABELS: { app: 'ratings' } });
  return [...translate(snap, proxy).get(TypeUrl.Listener)!.values()].find((l) => String(l.name).startsWith('inbound'))!;
}

test('naming the denying policy is on by default; MeshConfig trellis.authorizationDenialNamesPolicy false sends the switch as listener metadata', () => {
  assert.equal(inbound({}).metadata, undefined);
  assert.deepEqual(inbound({ authorizationDenialNamesPolicy: false }).metadata, { filter_metadata: { 'trellis.authz': { name_policy_on_deny: false } } });
});

test('the security filters come after Istio\'s stats filter, so a denial is counted in istio_requests_total', () => {
  const chain = (inbound({}).filter_chains as { filters: { typed_config: { http_filters?: { name: string }[] } }[] }[])[0];
  const names = chain.filters.flatMap((f) => f.typed_config.http_filters ?? []).map((f) => f.name);
  assert.deepEqual(names, ['trellis.filters.http.stats', 'envoy.filters.http.rbac', 'envoy.filters.http.fault', 'envoy.filters.http.cors', 'envoy.filters.http.router']);
});

test('rule translation: wildcards, not-forms, templates, TCP dropping HTTP-only fields per action', () => {
  const http = { forTcp: false, action: 'ALLOW' as const, namespace: 'shop', port: (p: number) => p };
  const p = rbacPolicyOf({ to: [{ operation: { paths: ['/a/*', '*.js', '*'], notMethods: ['DELETE'] } }] }, http)!;
  assert.deepEqual(p.permissions, [{ and_rules: { rules: [
    { not_rule: { header: { name: ':method', string_match: { exact: 'DELETE' } } } },
    { or_rules: { rules: [{ url_path: { path: { prefix: '/a/' } } }, { url_path: { path: { suffix: '.js' } } }, { url_path: { path: { safe_regex: { regex: '.+' } } } }] } },
  ] } }]);
  assert.equal(pathTemplateRegex('/files/{*}/x.y/{**}'), "/files/[a-zA-Z0-9\\-._~%!$&'()+,;:@=]+/x\\.y/[a-zA-Z0-9\\-._~%!$&'()+,;:@=/]*");
  const rule = { to: [{ operation: { methods: ['GET'], ports: ['3306'] } }] };
  assert.equal(rbacPolicyOf(rule, { ...http, forTcp: true }), undefined, 'ALLOW with an HTTP-only field is dropped on TCP');
  assert.deepEqual(rbacPolicyOf(rule, { ...http, forTcp: true, action: 'DENY' })!.permissions, [{ and_rules: { rules: [{ destination_port: 3306 }] } }], 'DENY keeps the rest');
  const sa = rbacPolicyOf({ from: [{ source: { serviceAccounts: ['web'], notNamespaces: ['test'] } }] }, http)!;
  assert.deepEqual(sa.principals, [{ and_ids: { ids: [
    { authenticated: { principal_name: { safe_regex: { regex: 'spiffe://.+/ns/shop/(.+/|)sa/web(/.+)?' } } } },
    { not_id: { authenticated: { principal_name: { safe_regex: { regex: '.*/ns/test/.*' } } } } },
  ] } }]);
});
