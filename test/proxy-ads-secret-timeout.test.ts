/**
 * The ADS client's readiness against our own xDS server (in process): a secret the control plane
 * never sends holds readiness back only until the SDS initial fetch timeout, as in Envoy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../src/xds/types.ts';
import { createXdsServer } from '../src/control/xds/server.ts';
import { generatorCache, resourceSet } from '../src/control/xds/testdata/resource-sets.ts';
import { AdsClient } from '../src/proxy/xds/ads-client.ts';

test('a named secret that never arrives delays readiness by the fetch timeout, not forever', async () => {
  const cluster = {
    name: 'tls-out', type: 'STATIC', connect_timeout: '1s',
    load_assignment: { cluster_name: 'tls-out', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9 } } } }] }] },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        common_tls_context: { validation_context_sds_secret_config: { name: 'kubernetes://missing-cacert', sds_config: { ads: {}, resource_api_version: 'V3' } } },
      },
    },
  };
  const server = createXdsServer({ debounceMs: 10, cache: generatorCache(() => resourceSet({ [TypeUrl.Cluster]: [cluster], [TypeUrl.Listener]: [] })).cache });
  const port = await server.listen();
  const warnings: unknown[] = [];
  const client = new AdsClient({
    address: `127.0.0.1:${port}`, node: { id: 'sidecar~127.0.0.1~a.default~default.svc.cluster.local' }, secretFetchTimeoutMs: 400,
    applier: { apply: () => {} },
    log: (level, msg, fields) => (level === 'warn' ? warnings.push({ msg, ...fields }) : undefined),
  });
  try {
    const t0 = Date.now();
    client.start();
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(client.isReady, false, 'still waiting for the secret');
    await client.ready;
    assert.ok(Date.now() - t0 >= 400, `ready after ${Date.now() - t0} ms`);
    assert.deepEqual(client.state.get(TypeUrl.Secret)?.names, ['kubernetes://missing-cacert']);
    assert.match(JSON.stringify(warnings), /kubernetes:\/\/missing-cacert/);
  } finally {
    client.stop();
    await server.close(200);
  }
});
