import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../xds/types.ts';
import { translate } from './index.ts';
import { node, serviceYaml, snapshotFromYaml } from './test-support.ts';

const mesh = `
${serviceYaml('backend', 'shop', '[{name: http, port: 8080}]')}`;
const telemetry = (name: string, ns: string, body: string) => `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ${name}, namespace: ${ns}}
spec:
${body}`;

type Json = Record<string, unknown>;

/** The stats filters of a proxy's listeners: listener name -> filter value (undefined when left out). */
function statsFilters(yaml: string, labels: Record<string, string>): Map<string, Json | undefined> {
  const set = translate(snapshotFromYaml(mesh + yaml), { ...node('sidecar', 'shop', 'backend-1'), labels });
  const out = new Map<string, Json | undefined>();
  for (const [name, l] of set.get(TypeUrl.Listener) ?? []) {
    for (const c of (l.filter_chains ?? []) as Json[]) {
      for (const f of (c.filters ?? []) as Json[]) {
        const http = (f.typed_config as Json | undefined)?.http_filters as Json[] | undefined;
        if (http === undefined) continue;
        const stats = http.find((h) => h.name === 'trellis.filters.http.stats');
        out.set(name, stats === undefined ? undefined : ((stats.typed_config as Json).value as Json));
      }
    }
  }
  return out;
}

test('Telemetry: mesh, namespace and workload scopes; disabled metrics leave the stats filter out', () => {
  const none = statsFilters('', { app: 'backend' });
  assert.ok([...none.values()].every((v) => v !== undefined && v.metrics === undefined));
  // Mesh-wide: a tag override on every metric; the workload scope disables server-side metrics.
  const yaml = telemetry('mesh', 'istio-system', `  metrics:
  - overrides:
    - match: {metric: ALL_METRICS}
      tagOverrides:
        destination_cluster: {value: "'east'"}
        request_protocol: {operation: REMOVE}
`) + telemetry('no-server-metrics', 'shop', `  selector: {matchLabels: {app: backend}}
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: ALL_METRICS, mode: SERVER}
      disabled: true
`);
  const f = statsFilters(yaml, { app: 'backend' });
  const inbound = [...f].filter(([n]) => n.startsWith('inbound_'));
  const outbound = [...f].filter(([n]) => !n.startsWith('inbound_'));
  assert.ok(inbound.length > 0 && outbound.length > 0);
  assert.ok(inbound.every(([, v]) => v === undefined), 'server side: metrics disabled, filter left out');
  for (const [, v] of outbound) assert.deepEqual(v!.metrics, [{ name: 'ALL_METRICS', tags_to_remove: ['request_protocol'], tag_overrides: { destination_cluster: 'east' } }]);
  // Another workload in the namespace is not selected: both sides keep the filter.
  const other = statsFilters(yaml, { app: 'other' });
  assert.ok([...other.values()].every((v) => v !== undefined));
  // A provider other than prometheus does not touch Istio's metrics.
  const otel = statsFilters(telemetry('otel', 'shop', `  metrics:
  - providers: [{name: otel}]
    overrides: [{disabled: true}]
`), { app: 'backend' });
  assert.ok([...otel.values()].every((v) => v !== undefined && v.metrics === undefined));
});
