/**
 * Test support for translation tests: loads a golden case (config YAML with optional
 * `# include:` line, plus `NAME.proxy.json` nodes) into a MeshSnapshot and ProxyNodes, and
 * builds proxies from short descriptions.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resourcesFromYaml, sourceOf } from '../../registry/test-support.ts';
import { buildSnapshot } from '../snapshot/snapshot.ts';
import type { MeshSnapshot, SnapshotOptions } from '../snapshot/snapshot.ts';
import { proxyNodeFromXds } from '../proxy-node.ts';
import type { ProxyNode, XdsNodeJson } from '../proxy-node.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Snapshot from YAML text (plus included files). */
export function snapshotFromYaml(text: string, opts: SnapshotOptions = {}): MeshSnapshot {
  const first = text.split('\n', 1)[0];
  let all = '';
  const m = /^#\s*include:\s*(.+)$/.exec(first);
  if (m !== null) for (const f of m[1].trim().split(/\s+/)) all += readFileSync(join(repoRoot, f), 'utf8') + '\n---\n';
  return buildSnapshot(sourceOf(resourcesFromYaml(all + text)), opts);
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
  const snapshot = snapshotFromYaml(text, meshMatch !== null ? { mesh: JSON.parse(meshMatch[1]) } : {});
  const raw: unknown = existsSync(proxyPath) ? JSON.parse(readFileSync(proxyPath, 'utf8')) : [];
  const nodes = (Array.isArray(raw) ? raw : [raw]) as XdsNodeJson[];
  return { snapshot, proxies: nodes.map(proxyNodeFromXds) };
}
