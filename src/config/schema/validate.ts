/**
 * A small interpreter for Kubernetes structural schemas that reports field-level problems with
 * field paths and stable codes (UNKNOWN_FIELD, WRONG_TYPE, REQUIRED_FIELD, BAD_ENUM, ...) and
 * applies schema `default`s the way the API server does (to absent properties of present
 * objects). We interpret rather than use ajv because we want one precise message per mistake
 * (ajv's oneOf/anyOf reporting buries the real error), unknown-field checking that upstream
 * schemas leave implicit, and defaulting in the same pass. Work is linear in the document size.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { SchemaIssue, SchemaNode } from './types.ts';
import type { ValueProblem } from './values.ts';
import { describe } from './values.ts';
import { joinIndex, joinKey } from './path.ts';
import { didYouMean } from './suggest.ts';

/** Named value checks referenced by `x-trellis-check`. */
export type CheckFn = (v: unknown) => ValueProblem | ValueProblem[] | undefined;

/** What one validation run needs. */
export interface ValidateOptions {
  /** Resolves `$ref` ids (trailing `#` stripped). */
  resolve(ref: string): SchemaNode | undefined;
  checks: Readonly<Record<string, CheckFn>>;
}

const PORT_FIELDS = new Set(['port', 'number', 'targetPort', 'nodePort', 'containerPort']);
const patternCache = new Map<string, RegExp | null>();

function compiledPattern(p: string): RegExp | null {
  let re = patternCache.get(p);
  if (re === undefined) {
    try { re = new RegExp(p); } catch { re = null; }
    patternCache.set(p, re);
  }
  return re;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function lastKey(path: string): string {
  const m = /([A-Za-z0-9_$-]+)$/.exec(path);
  return m ? m[1] : '';
}

/**
 * Validates `value` against `schema`, mutating it only to apply defaults and drop `null`
 * properties (Kubernetes treats an explicit null as absent). Issues are appended to `out`.
 */
export function validateValue(value: unknown, schema: SchemaNode, path: string, opts: ValidateOptions, out: SchemaIssue[], branch = false): void {
  let s = schema;
  for (let hops = 0; s.$ref !== undefined && hops < 8; hops++) {
    const r = opts.resolve(s.$ref.replace(/#$/, ''));
    if (!r) return;
    s = r;
  }
  const type = s.type ?? (s.properties ? 'object' : undefined);
  if (!typeMatches(value, type, s)) {
    const want = s['x-kubernetes-int-or-string'] ? 'integer or string' : type;
    out.push({ code: 'WRONG_TYPE', path, message: `expected ${want}, got ${describe(value)}` });
    return;
  }
  if (s.enum && !s.enum.some((e) => e === value)) {
    const allowed = s.enum.map((e) => JSON.stringify(e));
    const hint = typeof value === 'string' ? didYouMean(value, s.enum.filter((e): e is string => typeof e === 'string')) : '';
    out.push({ code: 'BAD_ENUM', path, message: `${describe(value)} is not one of ${allowed.join(', ')}${hint}` });
    return;
  }
  if (typeof value === 'string') checkString(value, s, path, out);
  else if (typeof value === 'number') checkNumber(value, s, path, out);
  else if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) out.push({ code: 'BAD_VALUE', path, message: `needs at least ${s.minItems} item(s), has ${value.length}` });
    if (s.maxItems !== undefined && value.length > s.maxItems) out.push({ code: 'BAD_VALUE', path, message: `allows at most ${s.maxItems} item(s), has ${value.length}` });
    if (s.items) {
      for (let i = 0; i < value.length; i++) {
        if (value[i] === null) { out.push({ code: 'WRONG_TYPE', path: joinIndex(path, i), message: 'list item is null' }); continue; }
        validateValue(value[i], s.items, joinIndex(path, i), opts, out);
      }
    }
  } else if (isPlainObject(value)) checkObject(value, s, path, opts, out, branch);

  // Combinator branches describe constraints, not the full field list: never "unknown field" there.
  if (s.allOf) for (const sub of s.allOf) validateValue(value, sub, path, opts, out, true);
  if (s.not) {
    const tmp: SchemaIssue[] = [];
    validateValue(isPlainObject(value) ? structuredClone(value) : value, s.not, path, opts, tmp, true);
    if (tmp.length === 0) out.push({ code: 'BAD_VALUE', path, message: `${describe(value)} is not allowed here` });
  }
  if (s.oneOf) checkAlternatives(value, s.oneOf, true, path, opts, out);
  if (s.anyOf) checkAlternatives(value, s.anyOf, false, path, opts, out);

  const check = s['x-trellis-check'];
  if (check !== undefined) {
    const fn = opts.checks[check];
    const res = fn ? fn(value) : undefined;
    for (const p of res === undefined ? [] : Array.isArray(res) ? res : [res]) {
      out.push({ code: p.code, path: p.subPath ? `${path}.${p.subPath}` : path, message: p.message });
    }
  }
}

function typeMatches(v: unknown, type: string | undefined, s: SchemaNode): boolean {
  if (s['x-kubernetes-int-or-string']) return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
  switch (type) {
    case undefined: return true;
    case 'object': return isPlainObject(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    default: return true;
  }
}

function checkString(v: string, s: SchemaNode, path: string, out: SchemaIssue[]): void {
  if (s.minLength !== undefined && v.length < s.minLength) {
    out.push({ code: s.minLength === 1 && v.length === 0 ? 'REQUIRED_FIELD' : 'BAD_VALUE', path, message: `must be at least ${s.minLength} character(s) long` });
    return;
  }
  if (s.maxLength !== undefined && v.length > s.maxLength) {
    out.push({ code: 'BAD_VALUE', path, message: `must be at most ${s.maxLength} characters long (is ${v.length})` });
    return;
  }
  if (s.pattern !== undefined) {
    const re = compiledPattern(s.pattern);
    if (re && !re.test(v)) {
      const field = lastKey(path);
      const code = /hostname/i.test(field) || /hostnames\[\d+\]$/.test(path) ? 'BAD_HOSTNAME'
        : /timeout|interval|duration/i.test(field) || /timeouts\.[a-zA-Z]+$/.test(path) ? 'BAD_DURATION' : 'BAD_VALUE';
      out.push({ code, path, message: `${describe(v)} does not match the required format ${s.pattern}` });
      return;
    }
  }
  if ((s.format === 'ipv4' && !isIPv4(v)) || (s.format === 'ipv6' && !isIPv6(v))) {
    out.push({ code: 'BAD_CIDR', path, message: `${describe(v)} is not an ${s.format} address` });
  }
}

function checkNumber(v: number, s: SchemaNode, path: string, out: SchemaIssue[]): void {
  const field = lastKey(path);
  const code = PORT_FIELDS.has(field) ? 'BAD_PORT' : 'BAD_VALUE';
  if (s.minimum !== undefined && (v < s.minimum || (s.exclusiveMinimum === true && v === s.minimum))) {
    out.push({ code, path, message: `${v} is below the minimum ${s.minimum}` });
  } else if (s.maximum !== undefined && (v > s.maximum || (s.exclusiveMaximum === true && v === s.maximum))) {
    out.push({ code, path, message: `${v} is above the maximum ${s.maximum}` });
  } else if (s.format === 'int32' && (v < -2147483648 || v > 2147483647)) {
    out.push({ code: 'BAD_VALUE', path, message: `${v} does not fit in int32` });
  }
}

function checkObject(v: Record<string, unknown>, s: SchemaNode, path: string, opts: ValidateOptions, out: SchemaIssue[], branch: boolean): void {
  const props = s.properties;
  // Defaults first, as the API server does, so that the rest of validation sees them.
  if (props) {
    for (const k in props) {
      const d = props[k].default;
      if (d !== undefined && v[k] === undefined) v[k] = structuredClone(d);
    }
  }
  for (const k of Object.keys(v)) if (v[k] === null) delete v[k];
  if (s.required) {
    for (const r of s.required) {
      if (v[r] === undefined) out.push({ code: 'REQUIRED_FIELD', path: joinKey(path, r), message: `required field "${r}" is missing` });
    }
  }
  const open = s['x-kubernetes-preserve-unknown-fields'] === true;
  const extra = typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined;
  const closed = !branch && !open && props !== undefined && s.additionalProperties !== true && extra === undefined;
  let count = 0;
  for (const k in v) {
    count++;
    const sub = props?.[k];
    if (sub) validateValue(v[k], sub, joinKey(path, k), opts, out);
    else if (extra) validateValue(v[k], extra, joinKey(path, k), opts, out);
    else if (closed) out.push({ code: 'UNKNOWN_FIELD', path: joinKey(path, k), message: `unknown field "${k}"${didYouMean(k, Object.keys(props))}` });
  }
  if (s.maxProperties !== undefined && count > s.maxProperties) out.push({ code: 'BAD_VALUE', path, message: `allows at most ${s.maxProperties} entries, has ${count}` });
  if (s.minProperties !== undefined && count < s.minProperties) out.push({ code: 'BAD_VALUE', path, message: `needs at least ${s.minProperties} entries, has ${count}` });
}

/** `{required: [x]}`, optionally with `properties` for x: one arm of a protobuf oneof. */
function isRequiredArm(a: SchemaNode): boolean {
  return a.required !== undefined && a.required.length === 1 && Object.keys(a).every((k) => k === 'required' || k === 'properties');
}

/**
 * Names of the fields an Istio-style protobuf "oneof" talks about, or undefined if `alts` is
 * not that shape: `oneOf: [{not: {anyOf: [arm...]}}, arm...]` where each arm requires one field.
 * It means "at most one of these fields"; the fields themselves are validated by `properties`.
 */
function exclusiveFields(alts: SchemaNode[]): string[] | undefined {
  const names = new Set<string>();
  for (const a of alts) {
    const keys = Object.keys(a);
    if (isRequiredArm(a)) a.required!.forEach((r) => names.add(r));
    else if (keys.length === 1 && a.not?.anyOf && a.not.anyOf.every(isRequiredArm)) {
      a.not.anyOf.forEach((x) => x.required!.forEach((r) => names.add(r)));
    } else return undefined;
  }
  return [...names];
}

function checkAlternatives(value: unknown, alts: SchemaNode[], exactlyOne: boolean, path: string, opts: ValidateOptions, out: SchemaIssue[]): void {
  if (exactlyOne && isPlainObject(value)) {
    const fields = exclusiveFields(alts);
    if (fields) {
      const set = fields.filter((f) => value[f] !== undefined);
      if (set.length > 1) out.push({ code: 'ONEOF_CONFLICT', path, message: `only one of ${fields.map((f) => `"${f}"`).join(', ')} may be set, found ${set.map((f) => `"${f}"`).join(' and ')}` });
      return;
    }
  }
  // Generic: evaluate each branch on a copy so that branch defaults do not leak.
  let best: SchemaIssue[] | undefined;
  let passing = 0;
  for (const alt of alts) {
    const tmp: SchemaIssue[] = [];
    validateValue(isPlainObject(value) || Array.isArray(value) ? structuredClone(value) : value, alt, path, opts, tmp, true);
    if (tmp.length === 0) passing++;
    else if (!best || tmp.length < best.length) best = tmp;
  }
  if (passing === 0 && best) {
    for (const i of best) out.push({ ...i, code: i.code === 'WRONG_TYPE' ? 'BAD_VALUE' : i.code });
  } else if (exactlyOne && passing > 1) {
    out.push({ code: 'ONEOF_CONFLICT', path, message: 'value matches more than one allowed form' });
  }
}
