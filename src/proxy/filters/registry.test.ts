import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultFilterRegistry, passThroughFilter } from './registry.ts';
import { compileRouteConfiguration } from '../router/route-table.ts';
import { hasCode } from '../../errors.ts';
import type { FilterFactoryContext } from '../http/stream.ts';
import type { CorsPolicy } from './cors.ts';

const ctx: FilterFactoryContext = { clusterManager: { get: () => undefined }, random: () => 0.5, statPrefix: 't' };
const router = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

test('chain building: lookup by @type first, then name; disabled and optional filters; router last', () => {
  const r = defaultFilterRegistry();
  const chain = r.buildChain([
    { name: 'my-fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', abort: { http_status: 503, percentage: { numerator: 1 } } } },
    { name: 'envoy.filters.http.cors' },
    { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/acme.Unknown' }, is_optional: true },
    { name: 'envoy.filters.http.jwt_authn', disabled: true },
    router,
  ], ctx, 'f');
  assert.deepEqual(chain.map((f) => f.name), ['my-fault', 'envoy.filters.http.cors', 'envoy.filters.http.router']);
  assert.equal(chain[2].terminal, true);
  for (const [list, msg] of [
    [[{ name: 'acme.nope' }, router], /f\[0\]\.name: unknown HTTP filter 'acme.nope'/],
    [[{ name: 'envoy.filters.http.cors' }], /router filter .* is required/],
    [[router, { name: 'envoy.filters.http.cors' }], /must be the last/],
    [[{ typed_config: {} }, router], /f\[0\]\.name: is required/],
  ] as const) assert.throws(() => r.buildChain(list, ctx, 'f'), (e: unknown) => hasCode(e, 'XDS_INVALID') && msg.test((e as Error).message));
});

test('register() replaces a pass-through slot; per-route configs are parsed at route compile time with paths', () => {
  const r = defaultFilterRegistry();
  let created = 0;
  r.register({ ...passThroughFilter('trellis.filters.http.stats', []), createFactory: (_c, _x, _p, name) => ({ name, terminal: false, createFilter: () => { created++; return {}; } }) });
  const chain = r.buildChain([{ name: 'trellis.filters.http.stats' }, router], ctx, 'f');
  chain[0].createFilter({} as never);
  assert.equal(created, 1);
  const table = compileRouteConfiguration({ virtual_hosts: [{ name: 'v', domains: ['*'], typed_per_filter_config: { 'envoy.filters.http.cors': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy', allow_origin_string_match: [{ prefix: 'https://' }] } }, routes: [] }] }, r);
  const policy = table.virtualHosts[0].perFilter.get('envoy.filters.http.cors') as CorsPolicy;
  assert.equal(policy.allowOrigin[0]('https://x'), true);
  assert.throws(() => compileRouteConfiguration({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', delay: { fixed_delay: 'soon' } } } }] }] }, r),
    /route_config\.virtual_hosts\[0\]\.routes\[0\]\.typed_per_filter_config\["envoy\.filters\.http\.fault"\]\.delay\.fixed_delay/);
});
