import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routesOfDump } from './gateway-urls.ts';

const hcm = (rds: string) => ({ name: 'envoy.filters.network.http_connection_manager', typed_config: { rds: { route_config_name: rds } } });

test('curl commands from a gateway config dump: local port, Host for named virtual hosts, exact headers, https with --resolve', () => {
  const dump = {
    types: {
      LDS: {
        resources: [
          { name: '0.0.0.0_8080', address: { socket_address: { address: '0.0.0.0', port_value: 41000 } }, filter_chains: [{ filters: [hcm('http.8080')] }] },
          { name: '0.0.0.0_443', address: { socket_address: { address: '0.0.0.0', port_value: 41443 } }, filter_chains: [{ transport_socket: { name: 'tls' }, filters: [hcm('https.443')] }] },
        ],
      },
      RDS: {
        resources: [
          {
            name: 'http.8080',
            virtual_hosts: [
              { name: 'bookinfo', domains: ['*'], routes: [{ match: { path: '/productpage' } }, { match: { prefix: '/static' } }, { match: { safe_regex: { regex: '^/api/.*' } } }] },
              { name: 'shop', domains: ['shop.example.com', 'shop.example.com:8080'], routes: [{ match: { prefix: '/', headers: [{ name: 'x-user', string_match: { exact: 'jason' } }] } }] },
            ],
          },
          { name: 'https.443', virtual_hosts: [{ name: 'secure', domains: ['secure.example.com'], routes: [{ match: { prefix: '' } }] }] },
        ],
      },
    },
  };
  assert.deepEqual(routesOfDump(dump), [
    { curl: 'curl http://127.0.0.1:41000/productpage', match: '/productpage' },
    { curl: 'curl http://127.0.0.1:41000/static', match: '/static*' },
    { curl: '', match: 'regex ^/api/.*' },
    { curl: "curl -H 'Host: shop.example.com' -H 'x-user: jason' http://127.0.0.1:41000/", match: '/*' },
    { curl: 'curl -k --resolve secure.example.com:41443:127.0.0.1 https://secure.example.com:41443/', match: '*' },
  ]);
  assert.deepEqual(routesOfDump({}), []);
});
