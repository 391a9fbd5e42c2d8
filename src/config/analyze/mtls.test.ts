import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeConfig } from './index.ts';
import { resourcesFromYaml } from './test-support.ts';
import type { ObservedPlaintext } from './mtls.ts';

const service = `apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { selector: { app: ratings }, ports: [{ name: http, port: 9080, targetPort: 8080 }] }
`;
const pa = (mode: string, extra = '') => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ratings-policy, namespace: default }
spec: { ${extra}mtls: { mode: ${mode} } }
`;
const dr = (tls: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: default }
spec: { host: ratings, trafficPolicy: { tls: { ${tls} } } }
`;

function run(yaml: string, observedPlaintext: readonly ObservedPlaintext[] = []) {
  return analyzeConfig(resourcesFromYaml(`${service}---\n${yaml}`), { observedPlaintext });
}

test('MTLS_CONFLICT: each DestinationRule tls mode the destination\'s PeerAuthentication refuses, and only those', () => {
  const cases: [string, string, boolean][] = [
    ['STRICT', 'mode: DISABLE', true],
    ['STRICT', 'mode: SIMPLE', true],
    ['STRICT', 'mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem', true],
    ['STRICT', 'mode: ISTIO_MUTUAL', false],
    ['DISABLE', 'mode: ISTIO_MUTUAL', true],
    ['DISABLE', 'mode: DISABLE', false],
    ['PERMISSIVE', 'mode: DISABLE', false],
    ['PERMISSIVE', 'mode: ISTIO_MUTUAL', false],
  ];
  for (const [server, client, bad] of cases) {
    const d = run(`${pa(server)}---\n${dr(client)}`).filter((x) => x.code === 'MTLS_CONFLICT');
    assert.equal(d.length, bad ? 1 : 0, `${server} vs ${client}: ${JSON.stringify(d)}`);
    if (bad) {
      assert.equal(d[0].resource?.name, 'ratings');
      assert.equal(d[0].fieldPath, 'spec.trafficPolicy.tls.mode');
      assert.match(d[0].message, /PeerAuthentication default\/ratings-policy makes workload port 8080/);
    }
  }
});

test('MTLS_CONFLICT follows Istio\'s precedence: a workload policy and port-level settings beat the namespace and mesh ones', () => {
  const mesh = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec: { mtls: { mode: STRICT } }\n';
  assert.deepEqual(run(`${mesh}---\n${dr('mode: DISABLE')}`).map((d) => d.code), ['MTLS_CONFLICT']);
  // The workload's own policy says PERMISSIVE: plaintext works.
  assert.deepEqual(run(`${mesh}---\n${pa('PERMISSIVE', 'selector: { matchLabels: { app: ratings } }, ')}---\n${dr('mode: DISABLE')}`).map((d) => d.code), []);
  // Port level: STRICT only on 8080 (the Service's target port).
  assert.deepEqual(run(`${pa('PERMISSIVE', 'selector: { matchLabels: { app: ratings } }, portLevelMtls: { "8080": { mode: STRICT } }, ')}---\n${dr('mode: DISABLE')}`).map((d) => d.code), ['MTLS_CONFLICT']);
});

test('MTLS_PLAINTEXT_CLIENTS: STRICT over a workload port the sidecar saw plaintext on names the clients; quiet when PERMISSIVE or no plaintext was seen', () => {
  const seen = [{ workload: 'default/ratings-v1 (ratings-v1-abc)', namespace: 'default', labels: { app: 'ratings', version: 'v1' }, port: 8080, minutes: 10, clients: [{ client: '127.0.0.1 curl/8.5.0', requests: 12 }] }];
  const strict = run(pa('STRICT'), seen).filter((d) => d.code === 'MTLS_PLAINTEXT_CLIENTS');
  assert.equal(strict.length, 1);
  assert.equal(strict[0].severity, 'warning');
  assert.equal(strict[0].resource?.name, 'ratings-policy');
  assert.match(strict[0].message, /makes default\/ratings-v1 \(ratings-v1-abc\) port 8080 STRICT, but it took 12 plaintext request\(s\) in the last 10 min from 127\.0\.0\.1 curl\/8\.5\.0 \(12\)/);
  assert.deepEqual(run(pa('PERMISSIVE'), seen).map((d) => d.code), []);
  assert.deepEqual(run(pa('STRICT'), [{ ...seen[0], clients: [] }]).map((d) => d.code), []);
  assert.deepEqual(run(pa('STRICT', 'selector: { matchLabels: { app: reviews } }, '), seen).filter((d) => d.code === 'MTLS_PLAINTEXT_CLIENTS').map((d) => d.code), [], 'a policy for other workloads');
  assert.deepEqual(run(pa('STRICT'), [{ ...seen[0], namespace: 'other' }]).filter((d) => d.code === 'MTLS_PLAINTEXT_CLIENTS'), [], 'another namespace');
});
