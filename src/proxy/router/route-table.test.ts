import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteTable, type RouteRequest } from './route-table.ts';
import { applyRouteHeaders, hasPathRewrite, perFilterConfig, pickWeightedCluster, redirectLocation, rewritePath } from './route-rewrite.ts';
import { hasCode } from '../../errors.ts';
import type { ForwardAction, RedirectAction } from './route-action.ts';
import { compileHeaderMutation } from './header-mutation.ts';

function req(authority: string, path: string, headers: Record<string, string> = {}, extra: Partial<RouteRequest> = {}): RouteRequest {
  return { authority, path, method: 'GET', scheme: 'http', headers, ...extra };
}

const route = (name: string, match: object, cluster = name) => ({ name, match, route: { cluster } });

test('virtual host selection: exact, suffix (longest first), prefix (longest first), then *', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      { name: 'exact', domains: ['www.foo.com', 'reviews:9080'], routes: [route('r', { prefix: '/' })] },
      { name: 'suffix-short', domains: ['*.com'], routes: [route('r', { prefix: '/' })] },
      { name: 'suffix-long', domains: ['*.foo.com'], routes: [route('r', { prefix: '/' })] },
      { name: 'suffix-dash', domains: ['*-bar.foo.com'], routes: [route('r', { prefix: '/' })] },
      { name: 'prefix-short', domains: ['foo.*'], routes: [route('r', { prefix: '/' })] },
      { name: 'prefix-long', domains: ['foo.bar.*'], routes: [route('r', { prefix: '/' })] },
      { name: 'any', domains: ['*'], routes: [route('r', { prefix: '/' })] },
    ],
  });
  const cases: [string, string][] = [
    ['www.foo.com', 'exact'],
    ['WWW.FOO.COM', 'exact'],
    ['reviews:9080', 'exact'],
    ['reviews', 'any'],
    ['reviews:80', 'any'],
    ['a.foo.com', 'suffix-long'],
    ['baz-bar.foo.com', 'suffix-dash'],
    ['-bar.foo.com', 'suffix-long'], // wildcard must match at least one character
    ['foo.com', 'suffix-short'],
    ['x.com', 'suffix-short'],
    ['foo.org', 'prefix-short'],
    ['foo.bar.org', 'prefix-long'],
    ['foo.', 'any'],
    ['www.foo.com:8080', 'suffix-short'.replace('suffix-short', 'any')],
    ['other', 'any'],
  ];
  for (const [host, want] of cases) assert.equal(t.findVirtualHost(host)?.name, want, host);
});

test('ignore_port_in_host_matching strips the port before domain matching; IPv6 literals keep their brackets', () => {
  const t = compileRouteTable({ ignore_port_in_host_matching: true, virtual_hosts: [{ name: 'a', domains: ['foo.com', '[::1]'], routes: [route('r', { prefix: '/' })] }] });
  assert.equal(t.findVirtualHost('foo.com:8080')?.name, 'a');
  assert.equal(t.findVirtualHost('[::1]:80')?.name, 'a');
  assert.equal(t.findVirtualHost('bar.com'), undefined);
});

test('route matching: prefix, path, safe_regex, path_separated_prefix, case sensitivity, first match wins', () => {
  const t = compileRouteTable({
    virtual_hosts: [{
      name: 'vh', domains: ['*'], routes: [
        route('exact', { path: '/exact' }),
        route('ci', { prefix: '/CI', case_sensitive: false }),
        route('regex', { safe_regex: { regex: '/re/[0-9]+' } }),
        route('sep', { path_separated_prefix: '/api' }),
        route('pre', { prefix: '/pre' }),
        route('all', { prefix: '/' }),
      ],
    }],
  });
  const cases: [string, string][] = [
    ['/exact', 'exact'], ['/exact?x=1', 'exact'], ['/exact/', 'all'], ['/EXACT', 'all'],
    ['/ci/x', 'ci'], ['/cI', 'ci'],
    ['/re/123', 'regex'], ['/re/12a', 'all'], ['/re/123?q', 'regex'],
    ['/api', 'sep'], ['/api/v1', 'sep'], ['/apix', 'all'], ['/api?x', 'sep'],
    ['/prefix', 'pre'], ['/PRE', 'all'],
  ];
  for (const [path, want] of cases) assert.equal(t.match(req('h', path))?.route.name, want, path);
});

test('header matchers: string_match kinds, ignore_case, present, range, invert, treat_missing_header_as_empty, pseudo-headers', () => {
  const mk = (h: object) => compileRouteTable({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [route('m', { prefix: '/', headers: [h] })] }] });
  const cases: [object, Record<string, string>, boolean, string?][] = [
    [{ name: 'x', string_match: { exact: 'a' } }, { x: 'a' }, true],
    [{ name: 'x', string_match: { exact: 'a' } }, { x: 'A' }, false],
    [{ name: 'x', string_match: { exact: 'a', ignore_case: true } }, { x: 'A' }, true],
    [{ name: 'X', exact_match: 'a' }, { x: 'a' }, true],
    [{ name: 'x', string_match: { prefix: 'ab' } }, { x: 'abc' }, true],
    [{ name: 'x', string_match: { suffix: 'bc' } }, { x: 'abc' }, true],
    [{ name: 'x', string_match: { contains: 'b' } }, { x: 'abc' }, true],
    [{ name: 'x', string_match: { safe_regex: { regex: 'a.c' } } }, { x: 'abc' }, true],
    [{ name: 'x', string_match: { safe_regex: { regex: 'a.c' } } }, { x: 'abcd' }, false],
    [{ name: 'x', present_match: true }, { x: '' }, true],
    [{ name: 'x', present_match: true }, {}, false],
    [{ name: 'x', present_match: false }, {}, true],
    [{ name: 'x', present_match: false }, { x: '1' }, false],
    [{ name: 'x', range_match: { start: '10', end: '20' } }, { x: '10' }, true],
    [{ name: 'x', range_match: { start: '10', end: '20' } }, { x: '20' }, false],
    [{ name: 'x', range_match: { start: -5, end: 0 } }, { x: '-3' }, true],
    [{ name: 'x', range_match: { start: 0, end: 20 } }, { x: '1.5' }, false],
    [{ name: 'x', string_match: { exact: 'a' }, invert_match: true }, { x: 'b' }, true],
    [{ name: 'x', string_match: { exact: 'a' }, invert_match: true }, { x: 'a' }, false],
    // A missing header fails every inverted matcher except present_match: true (differential test vs Envoy 1.40).
    [{ name: 'x', string_match: { exact: 'a' }, invert_match: true }, {}, false],
    [{ name: 'x', range_match: { start: '0', end: '9' }, invert_match: true }, {}, false],
    [{ name: 'x', present_match: true, invert_match: true }, {}, true],
    [{ name: 'x', present_match: true, invert_match: true }, { x: '1' }, false],
    [{ name: 'x', present_match: false, invert_match: true }, {}, false],
    [{ name: 'x' }, {}, false],
    [{ name: 'x', invert_match: true }, {}, true],
    [{ name: 'x', exact_match: '' }, { x: 'anything' }, true],
    [{ name: 'x', string_match: { exact: '' }, treat_missing_header_as_empty: true }, {}, true],
    [{ name: 'x', string_match: { exact: '' } }, {}, false],
    [{ name: ':method', string_match: { exact: 'GET' } }, {}, true],
    [{ name: ':authority', string_match: { exact: 'h' } }, {}, true],
    [{ name: 'x' }, { x: 'anything' }, true],
  ];
  for (const [h, headers, want] of cases) assert.equal(mk(h).match(req('h', '/', headers)) !== undefined, want, JSON.stringify([h, headers]));
  // Repeated headers: each value is matched on its own, any match counts (Envoy 1.40, differential test).
  const multi = (h: object) => mk(h).match({ ...req('h', '/'), headers: { x: ['a', 'b'] } }) !== undefined;
  assert.equal(multi({ name: 'x', string_match: { exact: 'a,b' } }), false);
  assert.equal(multi({ name: 'x', string_match: { exact: 'b' } }), true);
  assert.equal(multi({ name: 'x', string_match: { exact: 'a' }, invert_match: true }), false);
  assert.equal(multi({ name: 'x', string_match: { exact: 'z' }, invert_match: true }), true);
});

test('query parameter, grpc and runtime_fraction matchers', () => {
  const t = compileRouteTable({
    virtual_hosts: [{
      name: 'v', domains: ['*'], routes: [
        route('q', { prefix: '/q', query_parameters: [{ name: 'debug', string_match: { exact: 'true' } }, { name: 'x', present_match: true }] }),
        route('grpc', { prefix: '/', grpc: {} }),
        route('canary', { prefix: '/', runtime_fraction: { default_value: { numerator: 25, denominator: 'HUNDRED' } } }),
        route('rest', { prefix: '/' }),
      ],
    }],
  });
  assert.equal(t.match(req('h', '/q?debug=true&x'))?.route.name, 'q');
  assert.equal(t.match(req('h', '/q?debug=true', {}, { random: 0.9 }))?.route.name, 'rest');
  assert.equal(t.match(req('h', '/q?debug=false&x=1', {}, { random: 0.9 }))?.route.name, 'rest');
  assert.equal(t.match(req('h', '/svc/M', { 'content-type': 'application/grpc+proto' }))?.route.name, 'grpc');
  assert.equal(t.match(req('h', '/', {}, { random: 0.1 }))?.route.name, 'canary');
  assert.equal(t.match(req('h', '/', {}, { random: 0.25 }))?.route.name, 'rest');
});

test('weighted clusters: total_weight defaults to the sum; pick is proportional', () => {
  const t = compileRouteTable({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 75 }, { name: 'b', weight: 25 }] } } }] }] });
  const a = t.match(req('h', '/'))!.action as ForwardAction;
  assert.equal(a.totalWeight, 100);
  assert.equal(pickWeightedCluster(a.weightedClusters!, a.totalWeight, 0).name, 'a');
  assert.equal(pickWeightedCluster(a.weightedClusters!, a.totalWeight, 0.749).name, 'a');
  assert.equal(pickWeightedCluster(a.weightedClusters!, a.totalWeight, 0.75).name, 'b');
  assert.equal(pickWeightedCluster(a.weightedClusters!, a.totalWeight, 0.9999).name, 'b');
});

test('rewrites: prefix_rewrite keeps the rest and the query; regex_rewrite with capture groups', () => {
  const t = compileRouteTable({
    virtual_hosts: [{
      name: 'v', domains: ['*'], routes: [
        { match: { prefix: '/api/' }, route: { cluster: 'c', prefix_rewrite: '/' } },
        { match: { prefix: '/re' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '^/re/(\\w+)/(\\w+)' }, substitution: '/\\2/\\1' } } },
      ],
    }],
  });
  const m1 = t.match(req('h', '/api/v1/x?y=1'))!;
  const a1 = m1.action as ForwardAction;
  assert.equal(rewritePath(m1.route, a1.prefixRewrite, a1.regexRewrite, '/api/v1/x?y=1'), '/v1/x?y=1');
  const m2 = t.match(req('h', '/re/a/b?q'))!;
  const a2 = m2.action as ForwardAction;
  assert.equal(rewritePath(m2.route, a2.prefixRewrite, a2.regexRewrite, '/re/a/b?q'), '/b/a?q');
  assert.equal(a1.timeoutMs, 15000, 'Envoy default route timeout');
  // An empty prefix_rewrite is no rewrite (Envoy); a regex rewrite counts even when it changes nothing.
  assert.equal(hasPathRewrite('', undefined), false);
  assert.equal(rewritePath(m1.route, '', undefined, '/api/v1/x'), '/api/v1/x');
  assert.equal(hasPathRewrite(undefined, a2.regexRewrite), true);
});

test('redirects: every field', () => {
  const mk = (redirect: object) => {
    const t = compileRouteTable({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/old' }, redirect }] }] });
    return (authority: string, path: string, scheme = 'http') => {
      const m = t.match(req(authority, path))!;
      return [redirectLocation(m.route, m.action as RedirectAction, { scheme, authority, path }), (m.action as RedirectAction).status];
    };
  };
  assert.deepEqual(mk({ https_redirect: true })('a.com', '/old/x?q=1'), ['https://a.com/old/x?q=1', 301]);
  assert.deepEqual(mk({ https_redirect: true })('a.com:80', '/old'), ['https://a.com/old', 301]);
  assert.deepEqual(mk({ https_redirect: true })('a.com:8080', '/old'), ['https://a.com:8080/old', 301]);
  assert.deepEqual(mk({ scheme_redirect: 'http' })('a.com:443', '/old', 'https'), ['http://a.com/old', 301]);
  assert.deepEqual(mk({ host_redirect: 'b.com' })('a.com:8080', '/old'), ['http://b.com/old', 301]);
  assert.deepEqual(mk({ port_redirect: 8443 })('a.com:8080', '/old'), ['http://a.com:8443/old', 301]);
  // As Envoy 1.40 (differential test): port_redirect is appended as given, default port or not;
  // only the old scheme's default port is dropped on a scheme change.
  assert.deepEqual(mk({ https_redirect: true, port_redirect: 443 })('a.com', '/old'), ['https://a.com:443/old', 301]);
  assert.deepEqual(mk({ https_redirect: true })('a.com:443', '/old'), ['https://a.com:443/old', 301]);
  assert.deepEqual(mk({ host_redirect: 'b.com', port_redirect: 80 })('a.com', '/old'), ['http://b.com:80/old', 301]);
  assert.deepEqual(mk({})('a.com:80', '/old'), ['http://a.com:80/old', 301]);
  assert.deepEqual(mk({ https_redirect: true })('a.com:80', '/old', 'http'), ['https://a.com/old', 301]);
  assert.deepEqual(mk({ path_redirect: '/new?z=2', strip_query: true })('a.com', '/old?q=1'), ['http://a.com/new?z=2', 301]);
  assert.deepEqual(mk({ path_redirect: '/new', strip_query: true })('a.com', '/old?q=1'), ['http://a.com/new', 301]);
  assert.deepEqual(mk({ regex_rewrite: { pattern: { regex: '^/' }, substitution: '' } })('a.com', '/old'), ['http://a.com/old', 301]);
  assert.deepEqual(mk({ path_redirect: '/new' })('a.com', '/old/x?q=1'), ['http://a.com/new?q=1', 301]);
  assert.deepEqual(mk({ path_redirect: '/new?z=2' })('a.com', '/old/x?q=1'), ['http://a.com/new?z=2', 301]);
  assert.deepEqual(mk({ prefix_rewrite: '/new' })('a.com', '/old/x?q=1'), ['http://a.com/new/x?q=1', 301]);
  assert.deepEqual(mk({ regex_rewrite: { pattern: { regex: 'old' }, substitution: 'new' } })('a.com', '/old/old'), ['http://a.com/new/new', 301]);
  assert.deepEqual(mk({ strip_query: true })('a.com', '/old?x=1'), ['http://a.com/old', 301]);
  for (const [code, status] of [['MOVED_PERMANENTLY', 301], ['FOUND', 302], ['SEE_OTHER', 303], ['TEMPORARY_REDIRECT', 307], ['PERMANENT_REDIRECT', 308]] as const) {
    assert.equal(mk({ response_code: code })('a', '/old')[1], status);
  }
});

test('direct responses', () => {
  const t = compileRouteTable({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 418, body: { inline_string: 'teapot' } } }] }] });
  assert.deepEqual(t.match(req('h', '/'))!.action, { kind: 'direct_response', status: 418, body: 'teapot' });
});

test('header mutation order: most specific first by default (route config wins overwrites); reversed with most_specific_header_mutations_wins', () => {
  const cfg = (wins: boolean) => ({
    most_specific_header_mutations_wins: wins,
    request_headers_to_add: [{ header: { key: 'x-level', value: 'config' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
    virtual_hosts: [{
      name: 'v', domains: ['*'],
      request_headers_to_add: [{ header: { key: 'x-level', value: 'vhost' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }, { header: { key: 'x-list', value: 'vh' } }],
      routes: [{
        match: { prefix: '/' }, route: { cluster: 'c' },
        request_headers_to_add: [{ header: { key: 'x-level', value: 'route' }, append: false }, { header: { key: 'x-list', value: 'route' } }, { header: { key: 'x-absent', value: 'r' }, append_action: 'ADD_IF_ABSENT' }, { header: { key: 'x-ow', value: 'r' }, append_action: 'OVERWRITE_IF_EXISTS' }, { header: { key: 'x-empty', value: '' } }],
        request_headers_to_remove: ['x-remove'],
      }],
    }],
  });
  for (const wins of [false, true]) {
    const t = compileRouteTable(cfg(wins));
    const m = t.match(req('h', '/'))!;
    const h: Record<string, string | string[]> = { 'x-remove': '1', 'x-absent': 'orig' };
    applyRouteHeaders(h, t, m, undefined, 'request');
    assert.equal(h['x-level'], wins ? 'route' : 'config');
    assert.deepEqual(h['x-list'], wins ? ['vh', 'route'] : ['route', 'vh']);
    assert.equal(h['x-remove'], undefined);
    assert.equal(h['x-absent'], 'orig');
    assert.equal(h['x-ow'], undefined);
    assert.equal('x-empty' in h, false);
    // A weighted cluster's list is applied first whatever most_specific_header_mutations_wins says (Envoy 1.40).
    const wc = { name: 'c', clusterHeader: undefined, weight: 1, hostRewriteLiteral: undefined, perFilter: new Map(), responseHeaders: compileHeaderMutation({}, 'response', 'wc'),
      requestHeaders: compileHeaderMutation({ request_headers_to_add: [{ header: { key: 'x-list', value: 'wc' } }] }, 'request', 'wc') };
    const h2: Record<string, string | string[]> = {};
    applyRouteHeaders(h2, t, m, wc, 'request');
    assert.deepEqual(h2['x-list'], wins ? ['wc', 'vh', 'route'] : ['wc', 'route', 'vh']);
  }
});

test('typed_per_filter_config: route overrides vhost; FilterConfig wrapper; parser is called once at compile time', () => {
  let calls = 0;
  const t = compileRouteTable({
    virtual_hosts: [{
      name: 'v', domains: ['*'], typed_per_filter_config: { f: { '@type': 't', v: 'vhost' }, g: { '@type': 't', v: 'vhost-g' } },
      routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { f: { '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig', config: { '@type': 't', v: 'route' } } } }],
    }],
  }, { perFilterConfigParser: (_n, raw) => { calls++; return raw.v; } });
  const m = t.match(req('h', '/'))!;
  assert.equal(perFilterConfig(t, m, undefined, 'f'), 'route');
  assert.equal(perFilterConfig(t, m, undefined, 'g'), 'vhost-g');
  assert.equal(perFilterConfig(t, m, undefined, 'h'), undefined);
  assert.equal(calls, 3);
});

test('retry and hedge policies: route replaces vhost; defaults', () => {
  const t = compileRouteTable({
    virtual_hosts: [{
      name: 'v', domains: ['*'], retry_policy: { retry_on: '5xx', num_retries: 5 },
      routes: [
        { match: { prefix: '/a' }, route: { cluster: 'c', retry_policy: { retry_on: 'connect-failure,retriable-status-codes', retriable_status_codes: [409], per_try_timeout: '0.5s' }, hedge_policy: { hedge_on_per_try_timeout: true } } },
        { match: { prefix: '/' }, route: { cluster: 'c', timeout: '0s' } },
      ],
    }],
  });
  const a = t.match(req('h', '/a'))!.action as ForwardAction;
  assert.equal(a.retryPolicy!.numRetries, 1);
  assert.equal(a.retryPolicy!.perTryTimeoutMs, 500);
  assert.deepEqual([...a.retryPolicy!.retriableStatusCodes], [409]);
  assert.equal(a.retryPolicy!.baseIntervalMs, 25);
  assert.equal(a.retryPolicy!.maxIntervalMs, 250);
  assert.equal(a.hedgePolicy!.hedgeOnPerTryTimeout, true);
  const b = t.match(req('h', '/b'))!.action as ForwardAction;
  assert.equal(b.retryPolicy!.numRetries, 5);
  assert.equal(b.timeoutMs, 0);
});

test('invalid configs are rejected with the precise field path', () => {
  const bad: [object, string][] = [
    [{ virtual_hosts: [{ name: 'v', domains: [] }] }, 'route_config.virtual_hosts[0].domains'],
    [{ virtual_hosts: [{ name: 'a', domains: ['x'] }, { name: 'b', domains: ['x'] }] }, 'route_config.virtual_hosts[1].domains[0]'],
    [{ virtual_hosts: [{ name: 'a', domains: ['a.*.com'] }] }, 'route_config.virtual_hosts[0].domains[0]'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: {}, route: { cluster: 'c' } }] }] }, 'route_config.virtual_hosts[0].routes[0].match'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }] }] }, 'route_config.virtual_hosts[0].routes[0].match.safe_regex.regex'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/' } }] }] }, 'route_config.virtual_hosts[0].routes[0]'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', timeout: '5 seconds' } }] }] }, 'route_config.virtual_hosts[0].routes[0].route.timeout'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx,bogus' } } }] }] }, 'route_config.virtual_hosts[0].routes[0].route.retry_policy.retry_on'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 1 }], total_weight: 5 } } }] }] }, 'route_config.virtual_hosts[0].routes[0].route.weighted_clusters.total_weight'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/', headers: [{ name: 'x', string_match: {} }] }, route: { cluster: 'c' } }] }] }, 'route_config.virtual_hosts[0].routes[0].match.headers[0].string_match'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/' }, redirect: { response_code: 'NOPE' } }] }] }, 'route_config.virtual_hosts[0].routes[0].redirect.response_code'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 99 } }] }] }, 'route_config.virtual_hosts[0].routes[0].direct_response.status'],
    [{ request_headers_to_add: [{ header: { key: 'bad header', value: 'x' } }], virtual_hosts: [] }, 'route_config.request_headers_to_add[0].header.key'],
    [{ virtual_hosts: [{ name: 'a', domains: ['*'], request_headers_to_remove: [':path'] }] }, 'route_config.virtual_hosts[0].request_headers_to_remove[0]'],
    [[], 'route_config'],
  ];
  for (const [cfg, path] of bad) {
    assert.throws(() => compileRouteTable(cfg), (err: unknown) => hasCode(err, 'XDS_INVALID') && err.message.startsWith(`${path}:`) && err.context.path === path, `${path}`);
  }
});

test('compiled tables are frozen', () => {
  const t = compileRouteTable({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [route('r', { prefix: '/' })] }] });
  assert.ok(Object.isFrozen(t) && Object.isFrozen(t.virtualHosts[0]) && Object.isFrozen(t.virtualHosts[0].routes[0]));
});

test('header mutation within one level: conditions judged before the level, overwrites then appends (Envoy HeaderParser)', async () => {
  const { applyHeaderMutation, compileHeaderMutation } = await import('./header-mutation.ts');
  const level = (adds: object[]) => compileHeaderMutation({ request_headers_to_add: adds }, 'request', 'x');
  const h1: Record<string, string | string[]> = {};
  applyHeaderMutation(h1, level([{ header: { key: 'x-m', value: 'a' } }, { header: { key: 'x-m', value: 'b' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]));
  assert.deepEqual(h1['x-m'], ['b', 'a']);
  const h2: Record<string, string | string[]> = {};
  applyHeaderMutation(h2, level([{ header: { key: 'x-m', value: 'a' }, append_action: 'ADD_IF_ABSENT' }, { header: { key: 'x-m', value: 'b' }, append_action: 'ADD_IF_ABSENT' }]));
  assert.deepEqual(h2['x-m'], ['a', 'b']);
  const h3: Record<string, string | string[]> = {};
  applyHeaderMutation(h3, level([{ header: { key: 'x-m', value: 'a' } }, { header: { key: 'x-m', value: 'b' }, append_action: 'OVERWRITE_IF_EXISTS' }]));
  assert.equal(h3['x-m'], 'a', 'OVERWRITE_IF_EXISTS looks at the headers before the level');
});

test('require_tls: ALL redirects plain http to https (301, same host and path), EXTERNAL_ONLY spares internal requests', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      { name: 'all', domains: ['secure.example.com'], require_tls: 'ALL', routes: [route('r', { prefix: '/' })] },
      { name: 'ext', domains: ['ext.example.com'], require_tls: 'EXTERNAL_ONLY', routes: [route('r', { prefix: '/' })] },
      { name: 'none', domains: ['*'], routes: [route('r', { prefix: '/' })] },
    ],
  });
  const plain = t.match(req('secure.example.com', '/a?b=1'))!;
  assert.equal(plain.action.kind, 'redirect');
  assert.equal((plain.action as RedirectAction).status, 301);
  assert.equal(redirectLocation(plain.route, plain.action as RedirectAction, req('secure.example.com', '/a?b=1')), 'https://secure.example.com/a?b=1');
  assert.equal(t.match(req('secure.example.com', '/a', {}, { scheme: 'https' }))!.action.kind, 'route');
  assert.equal(t.match(req('secure.example.com', '/a', { 'x-forwarded-proto': 'https' }))!.action.kind, 'route', 'x-forwarded-proto decides, as in Envoy');
  assert.equal(t.match(req('ext.example.com', '/'))!.action.kind, 'redirect');
  assert.equal(t.match(req('ext.example.com', '/', { 'x-envoy-internal': 'true' }))!.action.kind, 'route');
  assert.equal(t.match(req('other', '/'))!.action.kind, 'route');
  assert.throws(() => compileRouteTable({ virtual_hosts: [{ name: 'x', domains: ['*'], require_tls: 'SOMETIMES', routes: [] }] }), /require_tls: expected NONE, EXTERNAL_ONLY or ALL/);
});
