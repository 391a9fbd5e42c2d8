/**
 * Real Envoy as the judge: every golden case's clusters and listeners (RDS/EDS/SDS over ADS left
 * dynamic) are put in a bootstrap and checked with `envoy --mode validate`, which runs Envoy's
 * own config validation (PGV rules, filter factories, TLS context checks) without serving.
 * Route configurations go inline on extra listeners. Proxyless api_listeners are left out (Envoy
 * serves only one, and it is for gRPC clients).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool } from '../../../test/support/tools.ts';
import { skipUnlessShared, skipUnlessTools } from '../../../test/support/skip.ts';
import { translate } from './index.ts';
import { loadCase } from './test-support.ts';
import { TypeUrl } from '../../xds/types.ts';
import { hcmConfig } from './filters.ts';
import { DefaultSystemCaBundle } from '../system-ca-bundle.ts';

const dir = fileURLToPath(new URL('./testdata', import.meta.url));

test('envoy --mode validate accepts every golden case', { skip: skipUnlessTools('envoy', 'openssl') || skipUnlessShared('istio-samples'), timeout: 120_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'trellis-envoy-validate-'));
  try {
    // The goldens name certificate files under /etc/certs and /etc/gw (and the OS roots); Envoy reads them, so point them at a real pair.
    const gen = spawnSync(findTool('openssl')!, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test',
      '-keyout', join(tmp, 'key.pem'), '-out', join(tmp, 'cert.pem')], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    writeFileSync(join(tmp, 'ca.pem'), readFileSync(join(tmp, 'cert.pem')));
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
      const { snapshot, proxies } = loadCase(join(dir, file));
      for (const proxy of proxies) {
        // As a stock Envoy connects (it lists no istio.metadata_exchange among its extensions), so
        // the config has none of Istio's TCP metadata exchange, which Envoy has not got.
        const set = translate(snapshot, Object.freeze({ ...proxy, metadataExchange: false }));
        assert.ok(!JSON.stringify([...set.values()].map((m) => [...m.values()])).includes('istio.metadata_exchange'), `${file}: metadata exchange sent to a stock Envoy`);
        const listeners = [...(set.get(TypeUrl.Listener)?.values() ?? [])].filter((l) => l.api_listener === undefined);
        const clusters = [...(set.get(TypeUrl.Cluster)?.values() ?? [])];
        // Route configurations (with the routes/ output and our http_proxy merge) ride inline on extra listeners.
        [...(set.get(TypeUrl.RouteConfiguration)?.values() ?? [])].forEach((rc, i) => listeners.push({
          name: `validate-routes-${i}`,
          address: { socket_address: { address: '127.0.0.1', port_value: 20000 + i } },
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { ...hcmConfig({ statPrefix: 'validate', routeConfigName: '' }), rds: undefined, route_config: rc } }] }],
        }));
        const bootstrap = {
          node: { id: proxy.id, cluster: 'validate' },
          static_resources: {
            listeners,
            clusters: [
              ...clusters,
              {
                name: 'xds-grpc', type: 'STATIC', connect_timeout: '1s',
                typed_extension_protocol_options: {
                  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
                    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
                    explicit_http_config: { http2_protocol_options: {} },
                  },
                },
                load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 15010 } } } }] }] },
              },
            ],
          },
          dynamic_resources: { ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] } },
        };
        const path = join(tmp, `${file}-${proxies.indexOf(proxy)}.json`);
        // Access-log paths too: Envoy opens them while validating, and /dev/stdout is no file here.
        writeFileSync(path, JSON.stringify(bootstrap).replaceAll('/etc/certs/', `${tmp}/`).replaceAll(`"${DefaultSystemCaBundle}"`, `"${tmp}/ca.pem"`).replaceAll('/etc/gw/', `${tmp}/`).replaceAll('"path":"/dev/stdout"', `"path":"${tmp}/access.log"`).replaceAll('"path":"/var/log/', `"path":"${tmp}/`));
        const r = spawnSync(findTool('envoy')!, ['--mode', 'validate', '-c', path, '-l', 'error', '--disable-hot-restart'], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 0, `${file} (${proxy.id}): envoy rejected the config:\n${r.stdout}\n${r.stderr}`.slice(0, 4000));
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
