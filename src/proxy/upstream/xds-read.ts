/**
 * Reading Envoy proto3 JSON (see src/xds/types.ts) into plain typed values at the edge. Every
 * reader takes the value and its field path and throws `TrellisError('XDS_INVALID')` naming the
 * resource and the path, so the xDS client can NACK with a precise reason. Nothing here knows
 * about clusters; it is the vocabulary the cluster and endpoint parsers are written in.
 */
import { TrellisError } from '../../errors.ts';
import type { XdsJson } from '../../xds/types.ts';

/** Where a value sits: resource kind+name and field path, for error messages. */
export interface FieldPath {
  readonly resource: string;
  readonly path: string;
}

/** The error every reader throws. */
export function invalid(at: FieldPath, message: string): TrellisError {
  return new TrellisError('XDS_INVALID', at.path === '' ? `${at.resource}: ${message}` : `${at.resource}: ${at.path}: ${message}`, {
    context: { resource: at.resource, field: at.path },
  });
}

/** Path of a child field. */
export function child(at: FieldPath, field: string | number): FieldPath {
  return { resource: at.resource, path: typeof field === 'number' ? `${at.path}[${field}]` : at.path === '' ? field : `${at.path}.${field}` };
}

export function isObject(v: unknown): v is XdsJson {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An optional message field: undefined when absent, otherwise it must be an object. */
export function optObject(parent: XdsJson, field: string, at: FieldPath): XdsJson | undefined {
  const v = parent[field];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalid(child(at, field), 'expected an object');
  return v;
}

/** An optional repeated field: [] when absent. */
export function optArray(parent: XdsJson, field: string, at: FieldPath): readonly unknown[] {
  const v = parent[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(child(at, field), 'expected a list');
  return v;
}

export function optString(parent: XdsJson, field: string, at: FieldPath): string | undefined {
  const v = parent[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(child(at, field), 'expected a string');
  return v;
}

export function optBool(parent: XdsJson, field: string, at: FieldPath): boolean | undefined {
  const v = parent[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(child(at, field), 'expected a boolean');
  return v;
}

/** A uint32 / wrapper UInt32Value (proto3 JSON also allows a decimal string). */
export function optUint(parent: XdsJson, field: string, at: FieldPath, max = 0xffffffff): number | undefined {
  const v = parent[field];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) throw invalid(child(at, field), `expected an integer between 0 and ${max}`);
  return n;
}

/** A double (e.g. overprovisioning factor, Percent.value). */
export function optNumber(parent: XdsJson, field: string, at: FieldPath, min = -Infinity, max = Infinity): number | undefined {
  const v = parent[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw invalid(child(at, field), `expected a number between ${min} and ${max}`);
  return v;
}

/** A google.protobuf.Duration in JSON form ("1.5s", "0.010s", "3s") as milliseconds. */
export function optDurationMs(parent: XdsJson, field: string, at: FieldPath): number | undefined {
  const v = parent[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(child(at, field), 'expected a duration string such as "1.5s"');
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
  if (m === null || m[1] === '-') throw invalid(child(at, field), `invalid duration '${v}' (expected a non-negative duration such as "1.5s")`);
  const frac = m[3] === undefined ? 0 : Number(`0.${m[3]}`);
  return Number(m[2]) * 1000 + frac * 1000;
}

/** An envoy.type.v3.Percent `{ value }` (0..100) as a fraction 0..1. */
export function optPercent(parent: XdsJson, field: string, at: FieldPath): number | undefined {
  const p = optObject(parent, field, at);
  if (p === undefined) return undefined;
  const value = optNumber(p, 'value', child(at, field), 0, 100) ?? 0;
  return value / 100;
}

/** A proto enum given by name; proto3 JSON also allows the number, mapped through `names` order. */
export function optEnum<T extends string>(parent: XdsJson, field: string, at: FieldPath, names: readonly T[]): T | undefined {
  const v = parent[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < names.length) return names[v];
  if (typeof v === 'string' && (names as readonly string[]).includes(v)) return v as T;
  throw invalid(child(at, field), `unknown value ${JSON.stringify(v)} (expected one of ${names.join(', ')})`);
}
