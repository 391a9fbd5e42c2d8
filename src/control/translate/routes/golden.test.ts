/**
 * Golden tests: every `testdata/NAME.yaml` (resources plus one `kind: RouteTest` document saying
 * what to build) is translated and compared with `NAME.golden.json`; run with
 * TRELLIS_UPDATE_GOLDEN=1 to refresh (a missing golden fails otherwise). Inputs included from
 * `../shared` skip with reason shared-data when it is absent. Each generated RouteConfiguration must also encode with the
 * protobuf codec (which rejects unknown fields and bad enum values).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Resource } from '../../../config/resource.ts';
import { resourcesFromYaml } from '../../../registry/test-support.ts';
import { encodeResource, loadProtoFiles } from '../../../xds/codec.ts';
import { TypeUrl, type XdsJson } from '../../../xds/types.ts';
import { buildGatewayApiRoute, buildIstioGatewayRoute, buildSidecarOutboundRoute, computeListenerStatus, computeRouteStatus } from './index.ts';
import { ROUTE_EXTENSION_PROTOS } from './envoy.ts';
import { inputsFromResources, testProxy } from './test-support.ts';
import { includedPath } from '../test-support.ts';
import { sharedDir, skipBecause } from '../../../../test/support/skip.ts';
import type { IstioGatewayResource } from './types.ts';

loadProtoFiles(ROUTE_EXTENSION_PROTOS);

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, 'testdata');

interface RouteTestSpec {
  include?: string[];
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  sidecars?: { namespace: string; labels?: Record<string, string>; ports: number[] }[];
  istioGateways?: { routeName: string; port: number; gateways: string[]; labels?: Record<string, string> }[];
  gatewayApi?: { routeName: string; gateway: string; port: number; listeners?: string[] }[];
  status?: boolean;
}

function loadCase(file: string): { spec: RouteTestSpec; resources: Resource[]; missing: string[] } {
  const text = readFileSync(join(dir, file), 'utf8');
  const docs = text.split(/^---$/m).map((d) => parse(d) as Record<string, unknown> | null);
  const specDoc = docs.find((d) => d?.kind === 'RouteTest');
  const spec = (specDoc?.spec ?? {}) as RouteTestSpec;
  const resources = resourcesFromYaml(text, file).filter((r) => r.kind !== 'RouteTest');
  const missing: string[] = [];
  for (const inc of spec.include ?? []) {
    const p = includedPath(inc);
    if (!existsSync(p)) missing.push(inc);
    else resources.unshift(...resourcesFromYaml(readFileSync(p, 'utf8'), inc));
  }
  return { spec, resources, missing };
}

function build(spec: RouteTestSpec, resources: Resource[]): Record<string, unknown> {
  const inputs = inputsFromResources(resources, spec.outboundTrafficPolicy ? { outboundTrafficPolicy: spec.outboundTrafficPolicy } : {});
  const routes: Record<string, XdsJson> = {};
  for (const s of spec.sidecars ?? []) {
    const proxy = testProxy(s.namespace, s.labels ?? {});
    for (const port of s.ports) routes[`sidecar ${s.namespace} ${JSON.stringify(s.labels ?? {})} ${port}`] = buildSidecarOutboundRoute(inputs, proxy, port);
  }
  for (const g of spec.istioGateways ?? []) {
    const proxy = testProxy('istio-system', g.labels ?? { istio: 'ingressgateway' }, 'router');
    const servers = g.gateways.flatMap((key) => {
      const gw = inputs.istioGateways.find((x) => `${x.metadata.namespace}/${x.metadata.name}` === key) as IstioGatewayResource;
      return (gw?.spec.servers ?? []).filter((s) => s.port?.number === g.port).map((server) => ({ gateway: gw, server }));
    });
    routes[`istio-gateway ${g.routeName}`] = buildIstioGatewayRoute(inputs, proxy, g.routeName, servers);
  }
  for (const g of spec.gatewayApi ?? []) {
    const gw = inputs.gateways.find((x) => `${x.metadata.namespace}/${x.metadata.name}` === g.gateway);
    assert.ok(gw, `gateway ${g.gateway}`);
    routes[`gateway ${g.gateway} ${g.routeName}`] = buildGatewayApiRoute(inputs, g.routeName, gw, g.port, g.listeners);
  }
  const out: Record<string, unknown> = { routes };
  if (spec.status) {
    out.routeStatus = Object.fromEntries(computeRouteStatus(inputs));
    out.listenerStatus = Object.fromEntries(computeListenerStatus(inputs));
  }
  return out;
}

for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
  const name = file.slice(0, -'.yaml'.length);
  test(`golden ${name}`, (t) => {
    const { spec, resources, missing } = loadCase(file);
    if (missing.length) {
      const notShared = missing.filter((m) => !includedPath(m).startsWith(sharedDir));
      assert.deepEqual(notShared, [], 'included files exist');
      t.skip(skipBecause('shared-data', `needs ${missing.join(', ')} (the shared test data: ../shared next to the repository, or TRELLIS_SHARED_DIR)`));
      return;
    }
    const got = build(spec, resources);
    for (const [key, cfg] of Object.entries(got.routes as Record<string, XdsJson>)) {
      assert.doesNotThrow(() => encodeResource(TypeUrl.RouteConfiguration, cfg), `${key} encodes`);
    }
    const goldenPath = join(dir, `${name}.golden.json`);
    const text = `${JSON.stringify(got, null, 2)}\n`;
    if (process.env.TRELLIS_UPDATE_GOLDEN === '1') {
      writeFileSync(goldenPath, text);
      return;
    }
    assert.ok(existsSync(goldenPath), `${goldenPath} missing: run with TRELLIS_UPDATE_GOLDEN=1`);
    assert.deepEqual(JSON.parse(text), JSON.parse(readFileSync(goldenPath, 'utf8')));
  });
}
