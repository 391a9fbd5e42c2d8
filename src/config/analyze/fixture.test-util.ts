/**
 * Test helper: turns multi-document YAML into Resources without the schema loader, so analyzer
 * unit tests depend only on the analyzers. No source positions: diagnostics carry no file/line.
 */
import { parseAllDocuments } from 'yaml';
import type { Resource } from '../resource.ts';

/** Resources from YAML text (group/Kind types, namespace defaulted to `default`). */
export function resourcesFromYaml(text: string): Resource[] {
  const out: Resource[] = [];
  for (const doc of parseAllDocuments(text)) {
    const o = doc.toJS() as Record<string, unknown> | null;
    if (o === null || typeof o !== 'object') continue;
    const apiVersion = String(o.apiVersion ?? '');
    const kind = String(o.kind ?? '');
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : 'core';
    const meta = (o.metadata ?? {}) as Record<string, unknown>;
    const { apiVersion: _a, kind: _k, metadata: _m, spec, ...body } = o;
    out.push({
      type: `${group}/${kind}`,
      apiVersion,
      kind,
      metadata: {
        name: String(meta.name ?? ''),
        namespace: String(meta.namespace ?? 'default'),
        labels: (meta.labels ?? {}) as Record<string, string>,
        annotations: (meta.annotations ?? {}) as Record<string, string>,
      },
      spec: spec ?? {},
      body,
    });
  }
  return out;
}
