/**
 * Real-world inputs nobody on this project wrote must load without a single error: every
 * Gateway API conformance manifest (base and per-test, `{GATEWAY_CLASS_NAME}` = trellis) and
 * every Istio sample file, each loaded on its own (the Istio samples reuse names across files,
 * as the Istio tasks apply them one at a time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/load.ts';
import { sharedDir as shared, skipUnlessShared } from './support/skip.ts';
import { yamlFilesUnder } from './support/yaml-files.ts';


function errorsOf(file: string, text: string): string[] {
  const r = parseConfigText(text, file);
  return r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.file}:${d.line} ${d.code} ${d.message}`);
}

const gwDirs = ['conformance/gateway-api/base', 'conformance/gateway-api/manifests'].map((d) => join(shared, d));

test('Gateway API conformance manifests load with zero errors', { skip: skipUnlessShared('conformance/gateway-api/base', 'conformance/gateway-api/manifests') }, () => {
  const files = gwDirs.flatMap((d) => yamlFilesUnder(d));
  assert.ok(files.length > 10, 'expected the conformance manifests');
  let resources = 0;
  const errors: string[] = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8').replaceAll('{GATEWAY_CLASS_NAME}', 'trellis');
    errors.push(...errorsOf(f, text));
    resources += parseConfigText(text, f).resources.length;
  }
  assert.deepEqual(errors, []);
  assert.ok(resources > 100, `only ${resources} resources loaded`);
});

const istioDir = join(shared, 'istio-samples');

test('Istio samples load with zero errors; ServiceAccounts are passed over', { skip: skipUnlessShared('istio-samples') }, () => {
  const files = yamlFilesUnder(istioDir);
  assert.ok(files.length > 5);
  for (const f of files) assert.deepEqual(errorsOf(f, readFileSync(f, 'utf8')), [], f);
  const bookinfo = parseConfigText(readFileSync(join(istioDir, 'bookinfo.yaml'), 'utf8'), 'bookinfo.yaml');
  assert.ok(bookinfo.diagnostics.some((d) => d.code === 'IGNORED_KIND' && d.severity === 'info'));
  assert.ok(bookinfo.resources.some((r) => r.type === 'core/Service' && r.metadata.name === 'reviews'));
  assert.equal(bookinfo.rejected.length, 0);
});

test('Istio sample VirtualService keeps its fields, source lines and is frozen', { skip: skipUnlessShared('istio-samples') }, () => {
  const file = join(istioDir, 'virtual-service-reviews-jason-v2-v3.yaml');
  const r = parseConfigText(readFileSync(file, 'utf8'), file);
  const vs = r.resources.find((x) => x.kind === 'VirtualService');
  assert.ok(vs);
  assert.equal(vs.type, 'networking.istio.io/VirtualService');
  assert.ok(Object.isFrozen(vs.spec));
  const line = vs.source?.lineOf?.('spec.http[0].route[0].destination.subset');
  assert.ok(line && line > vs.source!.line);
  assert.match(readFileSync(file, 'utf8').split('\n')[line - 1], /subset: v2/);
});
