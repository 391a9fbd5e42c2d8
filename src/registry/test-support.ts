/**
 * Test support: turns multi-document YAML into Resources (type from apiVersion group + kind,
 * Kubernetes metadata defaults, spec-less top-level fields in `body`) and a list-only source over
 * them. A stand-in for the config loader in unit tests of the registry, snapshot and translation;
 * it does no schema validation.
 */
import { parseAllDocuments } from 'yaml';
import type { ObjectMeta, Resource } from '../config/resource.ts';
import type { ResourceSource } from './registry.ts';

/** Parses YAML documents into Resources (documents without `kind` are skipped). */
export function resourcesFromYaml(text: string, file = '<test>'): Resource[] {
  const out: Resource[] = [];
  for (const doc of parseAllDocuments(text)) {
    const v = doc.toJS() as Record<string, unknown> | null;
    if (v === null || typeof v !== 'object' || typeof v.kind !== 'string') continue;
    out.push(resourceFromObject(v, file));
  }
  return out;
}

/** One Resource from a plain Kubernetes-style object. */
export function resourceFromObject(v: Record<string, unknown>, file = '<test>'): Resource {
  const apiVersion = String(v.apiVersion ?? 'v1');
  const kind = String(v.kind);
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : 'core';
  const m = (v.metadata ?? {}) as Record<string, unknown>;
  const metadata: ObjectMeta = Object.freeze({
    name: String(m.name ?? ''),
    namespace: String(m.namespace ?? 'default'),
    labels: Object.freeze({ ...((m.labels as Record<string, string>) ?? {}) }),
    annotations: Object.freeze({ ...((m.annotations as Record<string, string>) ?? {}) }),
    ...(typeof m.creationTimestamp === 'string' ? { creationTimestamp: m.creationTimestamp } : {}),
  });
  const body: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) if (!['apiVersion', 'kind', 'metadata', 'spec'].includes(k)) body[k] = val;
  return Object.freeze({
    type: `${group}/${kind}`,
    apiVersion,
    kind,
    metadata,
    spec: deepFreeze(v.spec ?? {}),
    body: deepFreeze(body),
    source: { file, line: 1 },
  });
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** A list-only source over fixed resources, sorted by namespace then name like a ConfigStore. */
export function sourceOf(resources: readonly Resource[]): ResourceSource & { types(): readonly string[] } {
  const sorted = [...resources].sort((a, b) => a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name));
  return {
    list: (type, namespace) => sorted.filter((r) => r.type === type && (namespace === undefined || r.metadata.namespace === namespace)),
    types: () => [...new Set(sorted.map((r) => r.type))],
  };
}
