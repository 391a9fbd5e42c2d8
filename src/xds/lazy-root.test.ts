import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import protobuf from 'protobufjs';
import { hasCode } from '../errors.ts';
import { encodeResource, lookupType } from './codec.ts';
import { indexTypes, LazyRoot } from './lazy-root.ts';
import { parseProtoRoot } from './proto-root.ts';
import { TypeUrl, type XdsJson } from './types.ts';

const parsed = parseProtoRoot();
const index = indexTypes(parsed);
// protobufjs's own JSON of the parsed root, loaded whole: what every process built before.
const full = protobuf.Root.fromJSON(parsed.toJSON());

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const listener: XdsJson = {
  name: 'l',
  address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': `type.googleapis.com/${HCM}`,
            stat_prefix: 'in',
            route_config: { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', timeout: '2s' } }] }] },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
          },
        },
      ],
    },
  ],
};

test('a lookup builds the type (and the type it is nested in), and its field types only when its codec is made', () => {
  const lazy = new LazyRoot(index);
  assert.equal(lazy.builtCount, 0);
  const address = lazy.exact('envoy.config.core.v3.Address');
  assert.ok(address instanceof protobuf.Type);
  assert.equal(lazy.builtCount, 1);
  assert.ok(!lazy.isBuilt('envoy.config.core.v3.SocketAddress'));
  // A nested type comes with the type it is nested in, not with its siblings.
  assert.ok(lazy.exact('envoy.config.cluster.v3.Cluster.LbPolicy') instanceof protobuf.Enum);
  assert.ok(lazy.isBuilt('envoy.config.cluster.v3.Cluster'));
  assert.ok(!lazy.isBuilt('envoy.config.cluster.v3.Cluster.CommonLbConfig'));
  const bytes = address.encode(address.fromObject({ socket_address: { address: '10.0.0.1', port_value: 80 } })).finish();
  assert.ok(lazy.isBuilt('envoy.config.core.v3.SocketAddress'));
  assert.deepEqual(address.toObject(address.decode(bytes)), { socket_address: { address: '10.0.0.1', port_value: 80 } });
  assert.ok(!lazy.isBuilt('envoy.config.bootstrap.v3.Bootstrap'));
  assert.ok(lazy.builtCount < 10, `${lazy.builtCount} built`);
});

test('a cluster whose nested types are built one by one encodes as the whole root does', () => {
  const lazy = new LazyRoot(index);
  const cluster = lazy.exact('envoy.config.cluster.v3.Cluster') as protobuf.Type;
  const first = cluster.encode(cluster.fromObject({ name: 'a', lb_policy: 'RING_HASH' })).finish();
  assert.ok(!lazy.isBuilt('envoy.config.cluster.v3.Cluster.LbSubsetConfig.LbSubsetSelector'));
  const selector = lazy.exact('envoy.config.cluster.v3.Cluster.LbSubsetConfig.LbSubsetSelector') as protobuf.Type;
  assert.ok(selector instanceof protobuf.Type);
  const msg = { name: 'a', lb_policy: 'RING_HASH', lb_subset_config: { subset_selectors: [{ keys: ['version'] }] } };
  const again = cluster.encode(cluster.fromObject(msg)).finish();
  assert.ok(Buffer.from(again).subarray(0, first.length).equals(Buffer.from(first)));
  assert.deepEqual(cluster.toObject(cluster.decode(again), { enums: String }), msg);
  const T = full.lookupType('envoy.config.cluster.v3.Cluster');
  assert.ok(Buffer.from(T.encode(T.fromObject(msg)).finish()).equals(Buffer.from(again)));
});

test('a nested type built after the type it is nested in made its codec leaves that codec working', () => {
  const lazy = new LazyRoot({
    'a.M': JSON.stringify({ fields: { x: { type: 'string', id: 1 } } }),
    'a.M.N': JSON.stringify({ fields: { y: { type: 'int32', id: 1 } } }),
    'a.P': JSON.stringify({ fields: { n: { type: '.a.M.N', id: 1 } } }),
  });
  const m = lazy.exact('a.M') as protobuf.Type;
  const bytes = m.encode(m.fromObject({ x: 'hi' })).finish();
  const encode = m.encode;
  assert.ok(!lazy.isBuilt('a.M.N'));
  const p = lazy.exact('a.P') as protobuf.Type;
  const pBytes = p.encode(p.fromObject({ n: { y: 7 } })).finish();
  assert.ok(lazy.isBuilt('a.M.N'));
  assert.equal(m.encode, encode);
  assert.deepEqual(m.toObject(m.decode(bytes)), { x: 'hi' });
  assert.deepEqual(p.toObject(p.decode(pBytes)), { n: { y: 7 } });
});

test('a lazily built type decodes a listener, and the HTTP connection manager in its Any, as the whole root does', () => {
  const lazy = new LazyRoot(index);
  const bytes = encodeResource(TypeUrl.Listener, listener);
  const decode = (r: protobuf.Root, type: string, b: Uint8Array) => {
    const T = r.lookupType(type);
    return T.toObject(T.decode(b), { longs: String, enums: String, bytes: String, defaults: true, arrays: true, objects: true, oneofs: true });
  };
  const l = decode(lazy, 'envoy.config.listener.v3.Listener', bytes);
  assert.deepEqual(l, decode(full, 'envoy.config.listener.v3.Listener', bytes));
  const hcmAny = l.filter_chains[0].filters[0].typed_config as { type_url: string; value: string };
  const hcmBytes = Buffer.from(hcmAny.value, 'base64');
  assert.deepEqual(decode(lazy, HCM, hcmBytes), decode(full, HCM, hcmBytes));
  assert.ok(lazy.isBuilt(HCM));
  assert.ok(!lazy.isBuilt('envoy.config.cluster.v3.Cluster'));
  assert.ok(lazy.builtCount < Object.keys(index).length / 2, `${lazy.builtCount} of ${Object.keys(index).length} built`);
});

test('names are exact: a partial or unknown name is no type, and the shared lookup says XDS_UNKNOWN_TYPE', () => {
  const lazy = new LazyRoot(index);
  assert.equal(lazy.exact('no.such.Thing'), null);
  assert.equal(lazy.exact('Cluster'), null);
  assert.equal(lazy.exact('envoy.config.core.v3.Nope'), null);
  assert.throws(() => lookupType('Cluster'), (e) => hasCode(e, 'XDS_UNKNOWN_TYPE'));
  assert.throws(() => lookupType('envoy.config.cluster.v3'), (e) => hasCode(e, 'XDS_UNKNOWN_TYPE'));
  assert.throws(() => lookupType('envoy.config.cluster.v3.Cluster.LbPolicy'), (e) => hasCode(e, 'XDS_UNKNOWN_TYPE'));
  assert.equal(lookupType('.envoy.config.cluster.v3.Cluster').fullName, '.envoy.config.cluster.v3.Cluster');
});

test('addIndex adds new types and keeps the ones already indexed', () => {
  const lazy = new LazyRoot({ 'a.b.M': JSON.stringify({ fields: { x: { type: 'string', id: 1 } } }) });
  assert.equal(lazy.exact('a.b.N'), null);
  lazy.addIndex({ 'a.b.N': JSON.stringify({ fields: { m: { type: '.a.b.M', id: 1 } } }), 'a.b.M': JSON.stringify({ fields: { y: { type: 'int32', id: 2 } } }) });
  const n = lazy.exact('a.b.N') as protobuf.Type;
  assert.deepEqual(n.toObject(n.decode(n.encode(n.fromObject({ m: { x: 'hi' } })).finish())), { m: { x: 'hi' } });
});

test('loading the data plane builds no proto type, and decoding a listener builds a fraction of them', () => {
  const script = `
    await import(${JSON.stringify(new URL('../proxy/data-plane.ts', import.meta.url).href)});
    const { protoRoot } = await import(${JSON.stringify(new URL('./proto-root.ts', import.meta.url).href)});
    const { decodeResource } = await import(${JSON.stringify(new URL('./codec.ts', import.meta.url).href)});
    const before = protoRoot().builtCount;
    decodeResource(${JSON.stringify(TypeUrl.Listener)}, Buffer.from(${JSON.stringify(Buffer.from(encodeResource(TypeUrl.Listener, listener)).toString('base64'))}, 'base64'));
    const r = protoRoot();
    console.log(JSON.stringify({ before, after: r.builtCount, indexed: r.indexedNames().length, bootstrap: r.isBuilt('envoy.config.bootstrap.v3.Bootstrap'), cluster: r.isBuilt('envoy.config.cluster.v3.Cluster') }));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const seen = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as { before: number; after: number; indexed: number; bootstrap: boolean; cluster: boolean };
  assert.equal(seen.before, 0);
  assert.equal(seen.bootstrap, false);
  assert.equal(seen.cluster, false);
  assert.ok(seen.after > 0 && seen.after < seen.indexed / 4, JSON.stringify(seen));
});
