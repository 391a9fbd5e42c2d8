/**
 * Turns one parsed YAML/JSON document into a validated, defaulted, deep-frozen Resource, or
 * into diagnostics and a RejectedDocument. Steps: identity (apiVersion, kind, metadata.name),
 * kind lookup (managed / known-but-unmanaged / typo), metadata, top-level fields, spec or body
 * against the kind's schema, documented defaults, freeze. Diagnostics name the file, line,
 * resource and field path. One document's problems never affect another's.
 */
import type { Diagnostic, Resource, ResourceRef, ResourceType, Severity, SourceInfo } from './resource.ts';
import type { SchemaIssue } from './schema/types.ts';
import { kindCatalog, isUnmanaged, kindsInGroup, knownGroups, splitApiVersion } from './schema/catalog.ts';
import type { KindInfo } from './schema/catalog.ts';
import { CHECKS } from './schema/checks.ts';
import { upstreamSchemas } from './schema/upstream.ts';
import { validateValue } from './schema/validate.ts';
import type { ValidateOptions } from './schema/validate.ts';
import { readMetadata } from './schema/metadata.ts';
import { closest, editDistance } from './schema/suggest.ts';
import { joinKey } from './schema/path.ts';
import { applyDefaults } from './defaults.ts';

/** A document that did not become a Resource (identity filled in as far as it could be read). */
export interface RejectedDocument { type?: ResourceType; namespace?: string; name?: string; file: string; line: number }

/** Where a document sits: file, first line, and a line finder for field paths. */
export interface DocLocation {
  file: string;
  line: number;
  lineOf(fieldPath: string): number | undefined;
  /** The SourceInfo the Resource keeps (lazy; must not retain the syntax tree). */
  source: SourceInfo;
}

/** The outcome for one document. */
export interface DocResult {
  resource?: Resource;
  rejected?: RejectedDocument;
  diagnostics: Diagnostic[];
}

const MAX_DEPTH = 64;
const TOP_LEVEL = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

let validateOpts: ValidateOptions | undefined;
function opts(): ValidateOptions {
  if (!validateOpts) {
    const up = upstreamSchemas();
    validateOpts = { resolve: (ref) => up.get(ref), checks: CHECKS };
  }
  return validateOpts;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Depth of nesting, computed iteratively so hostile input cannot blow the stack. */
export function exceedsDepth(v: unknown, max = MAX_DEPTH): boolean {
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (d > max) return true;
    if (Array.isArray(x)) for (const y of x) { if (typeof y === 'object' && y !== null) stack.push([y, d + 1]); }
    else if (isObj(x)) for (const k in x) { const y = x[k]; if (typeof y === 'object' && y !== null) stack.push([y, d + 1]); }
  }
  return false;
}

/** Freezes a plain-data tree in place (iteratively). */
export function deepFreeze<T>(v: T): T {
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x !== 'object' || x === null || Object.isFrozen(x)) continue;
    Object.freeze(x);
    for (const k in x as Record<string, unknown>) stack.push((x as Record<string, unknown>)[k]);
  }
  return v;
}

/** Makes a diagnostic with the document's location; `fieldPath` picks the line. */
export function diag(loc: DocLocation, severity: Severity, code: string, message: string, resource?: ResourceRef, fieldPath?: string): Diagnostic {
  const line = (fieldPath !== undefined && fieldPath !== '' ? loc.lineOf(fieldPath) : undefined) ?? loc.line;
  return {
    severity, code, message: fieldPath ? `${fieldPath}: ${message}` : message,
    file: loc.file, line,
    ...(resource ? { resource } : {}),
    ...(fieldPath ? { fieldPath } : {}),
  };
}

/** Best-effort identity of a document for RejectedDocument and diagnostics. */
function identity(doc: Record<string, unknown>): { kind?: string; name?: string; namespace?: string } {
  const m = isObj(doc.metadata) ? doc.metadata : {};
  return {
    kind: typeof doc.kind === 'string' ? doc.kind : undefined,
    name: typeof m.name === 'string' ? m.name : undefined,
    namespace: typeof m.namespace === 'string' ? m.namespace : undefined,
  };
}

type Classified =
  | { tag: 'managed'; info: KindInfo }
  | { tag: 'ignored'; message: string }
  | { tag: 'error'; code: string; message: string; fieldPath: string };

/** Decides what a (apiVersion, kind) pair is. */
export function classify(apiVersion: string, kind: string): Classified {
  const { group, version } = splitApiVersion(apiVersion);
  const cat = kindCatalog();
  for (const info of cat.values()) {
    if (info.group === group && info.kind === kind) {
      if (info.versions.includes(version)) return { tag: 'managed', info };
      const g = group === 'core' ? '' : `${group}/`;
      return { tag: 'error', code: 'UNKNOWN_API_VERSION', fieldPath: 'apiVersion', message: `${kind} is not served at ${apiVersion}; use ${info.versions.map((v) => g + v).join(' or ')}` };
    }
  }
  if (isUnmanaged(group, kind)) return { tag: 'ignored', message: `${apiVersion} ${kind} is not managed by Trellis; skipped` };
  const groups = knownGroups();
  if (groups.includes(group)) {
    const inGroup = closest(kind, kindsInGroup(group));
    const elsewhere = [...cat.values()].find((i) => i.kind === kind);
    const hint = inGroup ? ` (did you mean "${inGroup}"?)`
      : elsewhere ? ` (${kind} is in ${elsewhere.group === 'core' ? 'core' : elsewhere.group}: apiVersion ${elsewhere.group === 'core' ? '' : elsewhere.group + '/'}${elsewhere.versions[0]})` : '';
    return { tag: 'error', code: 'UNKNOWN_KIND', fieldPath: 'kind', message: `unknown kind "${kind}" in ${apiVersion}${hint}` };
  }
  const nearGroup = groups.find((g) => g !== 'core' && editDistance(g, group) <= 2);
  const sameKind = [...cat.values()].find((i) => i.kind === kind);
  if (nearGroup || (sameKind && /istio\.io$|k8s\.io$|trellis\.dev$/.test(group))) {
    const target = nearGroup ?? sameKind!.group;
    return { tag: 'error', code: 'UNKNOWN_API_VERSION', fieldPath: 'apiVersion', message: `unknown API group "${group}" (did you mean "${target}"?)` };
  }
  if (!apiVersion.includes('/') && group === 'core' && version !== 'v1') {
    return { tag: 'error', code: 'UNKNOWN_API_VERSION', fieldPath: 'apiVersion', message: `"${apiVersion}" is not a known API version` };
  }
  return { tag: 'ignored', message: `${apiVersion} ${kind} is not a kind Trellis knows; skipped` };
}

function issueDiag(loc: DocLocation, ref: ResourceRef | undefined, i: SchemaIssue): Diagnostic {
  return diag(loc, i.severity ?? 'error', i.code, i.message, ref, i.path);
}

/** How strictly a document is checked. */
export interface ProcessOptions {
  /**
   * The object comes from a Kubernetes API server, which validated its structure against the
   * installed CRD: a field Trellis's schema does not know (a newer Istio or Gateway API field)
   * is then a warning, and the object is still served, instead of an error that drops it.
   */
  readonly apiValidated?: boolean;
}

/** Validates one document's plain value (already converted from YAML). */
export function processDocument(value: unknown, loc: DocLocation, options: ProcessOptions = {}): DocResult {
  const reject = (extra: Partial<RejectedDocument> = {}): RejectedDocument => {
    const r: RejectedDocument = { file: loc.file, line: loc.line };
    if (extra.type !== undefined) r.type = extra.type;
    if (extra.name !== undefined) { r.name = extra.name; r.namespace = extra.namespace ?? 'default'; }
    return r;
  };
  if (value === null || value === undefined) return { diagnostics: [] }; // empty document ("---" with nothing after)
  if (!isObj(value)) {
    const what = Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value;
    return { rejected: reject(), diagnostics: [diag(loc, 'error', 'DOC_NOT_OBJECT', `document is ${what}, expected an object with apiVersion, kind and metadata`)] };
  }
  if (exceedsDepth(value)) {
    return { rejected: reject(), diagnostics: [diag(loc, 'error', 'DOC_TOO_DEEP', `document nests deeper than ${MAX_DEPTH} levels`)] };
  }
  const id = identity(value);
  const ref0: ResourceRef | undefined = id.kind && id.name ? { kind: id.kind, namespace: id.namespace ?? 'default', name: id.name } : undefined;
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    const code = apiVersion === undefined || apiVersion === '' ? 'MISSING_API_VERSION' : 'WRONG_TYPE';
    return { rejected: reject({ name: id.name, namespace: id.namespace }), diagnostics: [diag(loc, 'error', code, 'apiVersion must be a non-empty string', ref0, 'apiVersion')] };
  }
  if (typeof kind !== 'string' || kind === '') {
    const code = kind === undefined || kind === '' ? 'MISSING_KIND' : 'WRONG_TYPE';
    return { rejected: reject({ name: id.name, namespace: id.namespace }), diagnostics: [diag(loc, 'error', code, 'kind must be a non-empty string', ref0, 'kind')] };
  }
  const c = classify(apiVersion, kind);
  if (c.tag === 'ignored') return { diagnostics: [diag(loc, 'info', 'IGNORED_KIND', c.message, ref0)] };
  if (c.tag === 'error') {
    return { rejected: reject({ name: id.name, namespace: id.namespace }), diagnostics: [diag(loc, 'error', c.code, c.message, ref0, c.fieldPath)] };
  }
  const info = c.info;
  const o = opts();
  const issues: SchemaIssue[] = [];
  const md = readMetadata(value.metadata, info, o);
  issues.push(...md.issues);
  const ref: ResourceRef | undefined = md.meta ? { kind, namespace: md.meta.namespace, name: md.meta.name } : ref0;

  const bodyKeys = info.body?.properties ?? {};
  for (const k of Object.keys(value)) {
    if (!TOP_LEVEL.has(k) && !(k in bodyKeys)) {
      const cands = [...TOP_LEVEL, ...Object.keys(bodyKeys)];
      const near = closest(k, cands);
      issues.push({ code: 'UNKNOWN_FIELD', path: joinKey('', k), message: `unknown top-level field "${k}"${near ? ` (did you mean "${near}"?)` : ''}` });
    }
  }
  let spec: Record<string, unknown> = {};
  if (info.spec) {
    if (value.spec === undefined || value.spec === null) {
      if (info.specRequired) issues.push({ code: 'REQUIRED_FIELD', path: 'spec', message: `${kind} needs a spec` });
      else validateValue(spec, info.spec, 'spec', o, issues);
    } else {
      validateValue(value.spec, info.spec, 'spec', o, issues);
      if (isObj(value.spec)) spec = value.spec;
    }
  } else if (value.spec !== undefined) {
    issues.push({ code: 'UNKNOWN_FIELD', path: 'spec', message: `${kind} has no spec` });
  }
  let body: Record<string, unknown> | undefined;
  if (info.body) {
    body = {};
    for (const k of Object.keys(bodyKeys)) if (value[k] !== undefined) body[k] = value[k];
    validateValue(body, info.body, '', o, issues);
  }
  if (options.apiValidated) {
    for (let i = 0; i < issues.length; i++) {
      if (issues[i].code === 'UNKNOWN_FIELD') issues[i] = { ...issues[i], severity: 'warning', message: `${issues[i].message}; the API server accepted it, Trellis ignores it` };
    }
  }
  const diagnostics = issues.map((i) => issueDiag(loc, ref, i));
  if (issues.some((i) => (i.severity ?? 'error') === 'error') || !md.meta) {
    return { rejected: reject({ type: info.type, name: md.meta?.name ?? id.name, namespace: md.meta?.namespace ?? id.namespace }), diagnostics };
  }
  applyDefaults(info.type, spec);
  const resource: Resource = {
    type: info.type,
    apiVersion,
    kind,
    metadata: md.meta,
    spec,
    ...(body ? { body } : {}),
    source: loc.source,
  };
  deepFreeze(resource.metadata);
  deepFreeze(spec);
  if (body) deepFreeze(body);
  Object.freeze(resource);
  return { resource, diagnostics };
}
