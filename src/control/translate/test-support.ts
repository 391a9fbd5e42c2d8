/**
 * Test support for translation tests: loads a golden case (config YAML with optional
 * `# include:` line, plus `NAME.proxy.json` nodes) into a MeshSnapshot and ProxyNodes, and
 * builds proxies from short descriptions.
 */
import { parseMeshConfig } from '../../config/mesh-config.ts';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resourcesFromYaml, sourceOf } from '../../registry/test-support.ts';
import { parseConfigText } from '../../config/load.ts';
import type { Resource } from '../../config/resource.ts';
import { buildSnapshot } from '../snapshot/snapshot.ts';
import type { MeshSnapshot, SnapshotOptions } from '../snapshot/snapshot.ts';
import { proxyNodeFromXds } from '../proxy-node.ts';
import type { ProxyNode, XdsNodeJson } from '../proxy-node.ts';
import { sharedDir, skipUnlessShared } from '../../../test/support/skip.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Snapshot from YAML text (plus included files), through the real config loader (schema
 * validation, defaults); a rejected document fails the test. `raw` skips the loader (for
 * deliberately invalid input).
 */
export function snapshotFromYaml(text: string, opts: SnapshotOptions & { raw?: boolean } = {}): MeshSnapshot {
  const docs: [string, string][] = includedFiles(text).map((f) => [f, readFileSync(includedPath(f), 'utf8')]);
  docs.push(['<case>', text]);
  const resources: Resource[] = [];
  for (const [file, body] of docs) {
    if (opts.raw === true) {
      resources.push(...resourcesFromYaml(body, file));
      continue;
    }
    const r = parseConfigText(body, file);
    if (r.rejected.length > 0) {
      throw new Error(`${file}: rejected by the loader: ${r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message).join('; ')}`);
    }
    resources.push(...r.resources);
  }
  return buildSnapshot(sourceOf(resources), opts);
}

/** The files a case's first-line `# include: a.yaml b.yaml` names (relative to the repository root). */
export function includedFiles(text: string): string[] {
  const m = /^#\s*include:\s*(.+)$/.exec(text.split('\n', 1)[0]);
  return m === null ? [] : m[1].trim().split(/\s+/);
}

/** Where an included file is: `../shared/...` in the shared test data (skip.ts's sharedDir), anything else under the repository. */
export function includedPath(file: string): string {
  return file.startsWith('../shared/') ? join(sharedDir, file.slice('../shared/'.length)) : join(repoRoot, file);
}

/** A `shared-data` skip when a case includes files from `../shared` and it is absent, else false. */
export function skipUnlessIncludesPresent(text: string): false | string {
  const shared = includedFiles(text).filter((f) => f.startsWith('../shared/')).map((f) => f.slice('../shared/'.length));
  return skipUnlessShared(...shared);
}

/** A sidecar/router node: `kind~ip~pod.ns~ns.svc.cluster.local` with metadata. */
export function node(kind: 'sidecar' | 'router', namespace: string, name: string, metadata: Record<string, unknown> = {}): ProxyNode {
  return proxyNodeFromXds({ id: `${kind}~10.0.0.1~${name}.${namespace}~${namespace}.svc.cluster.local`, metadata: { NAMESPACE: namespace, ...metadata } });
}

/** A golden case: the snapshot and its proxies. */
export function loadCase(yamlPath: string): { snapshot: MeshSnapshot; proxies: ProxyNode[] } {
  const proxyPath = yamlPath.replace(/\.yaml$/, '.proxy.json');
  const text = readFileSync(yamlPath, 'utf8');
  const meshMatch = /^#\s*mesh:\s*(\{.*\})$/m.exec(text);
  // `meshConfig` in the mesh line is an Istio MeshConfig, read by the one MeshConfig reader.
  const { meshConfig, ...mesh } = (meshMatch !== null ? JSON.parse(meshMatch[1]) : {}) as Record<string, unknown>;
  const read = meshConfig !== undefined ? parseMeshConfig(JSON.stringify(meshConfig), yamlPath) : undefined;
  const fromMeshConfig = {
    ...(read?.telemetry !== undefined ? { telemetry: read.telemetry } : {}),
    ...(read?.extAuthzProviders !== undefined ? { extAuthzProviders: read.extAuthzProviders } : {}),
  };
  const snapshot = snapshotFromYaml(text, { mesh: { ...mesh, ...fromMeshConfig } });
  const raw: unknown = existsSync(proxyPath) ? JSON.parse(readFileSync(proxyPath, 'utf8')) : [];
  const nodes = (Array.isArray(raw) ? raw : [raw]) as XdsNodeJson[];
  return { snapshot, proxies: nodes.map(proxyNodeFromXds) };
}

/** A Service `name` in `namespace` selecting `app: name`, with `ports` as a YAML flow list. */
export function serviceYaml(name: string, namespace: string, ports: string): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: {app: ${name}}
  ports: ${ports}
`;
}
