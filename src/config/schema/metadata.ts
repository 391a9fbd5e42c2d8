/**
 * Validates and normalises `metadata`: name present and a valid DNS-1123 name (label or
 * subdomain, per kind), namespace a DNS-1123 label defaulting to "default" (empty for
 * cluster-scoped kinds), labels with valid keys and values, annotations as strings.
 */
import type { ObjectMeta } from '../resource.ts';
import type { SchemaIssue } from './types.ts';
import type { KindInfo } from './catalog.ts';
import { OBJECT_META } from './local.ts';
import { validateValue } from './validate.ts';
import type { ValidateOptions } from './validate.ts';
import { joinKey } from './path.ts';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Checks a DNS-1123 label (≤ 63). */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && LABEL.test(s);
}

/** Checks a DNS-1123 subdomain (≤ 253). */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && SUBDOMAIN.test(s);
}

function labelKeyProblem(k: string): string | undefined {
  const slash = k.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : k.slice(0, slash);
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (prefix !== undefined && !isDnsSubdomain(prefix)) return `label key prefix "${prefix}" must be a DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !QUALIFIED.test(name)) return `label key "${k}" must be ≤ 63 characters of [A-Za-z0-9-_.] starting and ending alphanumeric`;
  return undefined;
}

/** Validates raw metadata; returns the normalised ObjectMeta (when a name could be read) and issues. */
export function readMetadata(raw: unknown, info: KindInfo, opts: ValidateOptions): { meta?: ObjectMeta; issues: SchemaIssue[] } {
  const issues: SchemaIssue[] = [];
  if (raw === undefined || raw === null) {
    issues.push({ code: 'REQUIRED_FIELD', path: 'metadata.name', message: 'metadata.name is required' });
    return { issues };
  }
  validateValue(raw, OBJECT_META, 'metadata', opts, issues);
  if (typeof raw !== 'object' || Array.isArray(raw)) return { issues };
  const m = raw as Record<string, unknown>;
  const name = m.name;
  if (name === undefined || name === '') {
    issues.push({ code: 'REQUIRED_FIELD', path: 'metadata.name', message: 'metadata.name is required' });
  } else if (typeof name === 'string') {
    const ok = info.nameFormat === 'label' ? isDnsLabel(name) : isDnsSubdomain(name);
    if (!ok) {
      const what = info.nameFormat === 'label' ? 'a DNS-1123 label (lowercase letters, digits and "-", at most 63, starting and ending alphanumeric)' : 'a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at most 253)';
      issues.push({ code: 'BAD_NAME', path: 'metadata.name', message: `${info.kind} name "${name}" must be ${what}` });
    }
  }
  let namespace = 'default';
  if (typeof m.namespace === 'string') {
    if (!isDnsLabel(m.namespace)) issues.push({ code: 'BAD_NAME', path: 'metadata.namespace', message: `namespace "${m.namespace}" must be a DNS-1123 label` });
    namespace = m.namespace;
  }
  if (info.clusterScoped) namespace = '';
  const labels = (typeof m.labels === 'object' && m.labels !== null ? m.labels : {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(labels)) {
    const p = labelKeyProblem(k);
    if (p) issues.push({ code: 'BAD_LABEL', path: joinKey('metadata.labels', k), message: p });
    if (typeof v === 'string' && v !== '' && (v.length > 63 || !QUALIFIED.test(v))) {
      issues.push({ code: 'BAD_LABEL', path: joinKey('metadata.labels', k), message: `label value "${v}" must be ≤ 63 characters of [A-Za-z0-9-_.] starting and ending alphanumeric` });
    }
  }
  if (typeof name !== 'string' || name === '') return { issues };
  const meta: ObjectMeta = {
    name,
    namespace,
    labels: labels as Record<string, string>,
    annotations: (typeof m.annotations === 'object' && m.annotations !== null ? m.annotations : {}) as Record<string, string>,
    ...(typeof m.creationTimestamp === 'string' ? { creationTimestamp: m.creationTimestamp } : {}),
    ...(typeof m.generation === 'number' ? { generation: m.generation } : {}),
    ...(typeof m.resourceVersion === 'string' ? { resourceVersion: m.resourceVersion } : {}),
    ...(typeof m.uid === 'string' ? { uid: m.uid } : {}),
  };
  return { meta, issues };
}
