/**
 * The proxy's one reader of Envoy proto3 JSON (xDS resources: listeners, clusters, endpoints,
 * secrets, route tables, HTTP and network filter configs) into plain typed values at the config
 * edge. Every reader takes the value and the field path it sits at (`cluster 'c'.connect_timeout`,
 * `route_configuration 'r'.virtual_hosts[0].routes[2].match`) and throws
 * `TrellisError('XDS_INVALID')` naming that path, so the xDS client can NACK with a precise reason
 * and keep the last good config. Nothing here runs per request.
 */
import { TrellisError } from '../errors.ts';
import type { XdsJson } from '../xds/types.ts';

/** A JSON object from an xDS resource. */
export type Json = XdsJson;

/** Error code for every invalid xDS resource or field the proxy reads. */
export const XDS_INVALID = 'XDS_INVALID';

/** Throw a config error naming the field path. */
export function configError(path: string, message: string, cause?: unknown): never {
  throw new TrellisError(XDS_INVALID, `${path}: ${message}`, { cause, context: { path } });
}

/** The path of a field (`a.b`) or a list element (`a[2]`) below `path`. */
export function child(path: string, field: string | number): string {
  return typeof field === 'number' ? `${path}[${field}]` : path === '' ? field : `${path}.${field}`;
}

/** True for a plain JSON object. */
export function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The object at `v` (or undefined when absent); throws when present but not an object. */
export function optObj(v: unknown, path: string): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) configError(path, 'expected an object');
  return v;
}

/** An array (empty when absent). */
export function optArr(v: unknown, path: string): readonly unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) configError(path, 'expected a list');
  return v;
}

export function optStr(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') configError(path, 'expected a string');
  return v;
}

/** A bool or a google.protobuf.BoolValue (proto3 JSON gives the plain value; `{value}` is accepted too). */
export function optBool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObj(v) && 'value' in v) return optBool(v.value, path);
  if (typeof v !== 'boolean') configError(path, 'expected a boolean');
  return v;
}

/** A uint32/uint64 or its wrapper, at most `max`; proto3 JSON may carry 64-bit ints as decimal strings. */
export function optUint(v: unknown, path: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObj(v) && 'value' in v) return optUint(v.value, path, max);
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    configError(path, max === Number.MAX_SAFE_INTEGER ? 'expected a non-negative integer' : `expected an integer between 0 and ${max}`);
  }
  return n;
}

/** A double (e.g. overprovisioning factor, Percent.value) within [min, max]. */
export function optNumber(v: unknown, path: string, min = -Infinity, max = Infinity): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObj(v) && 'value' in v) return optNumber(v.value, path, min, max);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) configError(path, `expected a number between ${min} and ${max}`);
  return v;
}

/** A google.protobuf.Duration: "1.5s" (proto3 JSON) or {seconds, nanos}, as milliseconds; never negative. */
export function optDurationMs(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
    if (m === null) configError(path, `invalid duration '${v}' (expected a duration such as "1.5s")`);
    if (m[1] === '-') configError(path, `invalid duration '${v}': a duration must not be negative`);
    return Number(m[2]) * 1000 + (m[3] === undefined ? 0 : Number(`0.${m[3]}`) * 1000);
  }
  if (isObj(v)) {
    const s = Number(v.seconds ?? 0);
    const n = Number(v.nanos ?? 0);
    if (!Number.isFinite(s) || !Number.isFinite(n) || s < 0 || n < 0) configError(path, 'invalid duration');
    return s * 1000 + n / 1e6;
  }
  return configError(path, 'expected a duration string such as "1.5s"');
}

/** An envoy.type.v3.Percent `{ value }` (0..100) as a fraction 0..1. */
export function optPercent(v: unknown, path: string): number | undefined {
  const p = optObj(v, path);
  if (p === undefined) return undefined;
  return (optNumber(p.value, child(path, 'value'), 0, 100) ?? 0) / 100;
}

/** A proto enum given by name; proto3 JSON also allows the number, mapped through `names` order. */
export function optEnum<T extends string>(v: unknown, path: string, names: readonly T[]): T | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < names.length) return names[v];
  if (typeof v === 'string' && (names as readonly string[]).includes(v)) return v as T;
  return configError(path, `unknown value ${JSON.stringify(v)} (expected one of ${names.join(', ')})`);
}

/** A fraction in [0,1] from a FractionalPercent {numerator, denominator HUNDRED|TEN_THOUSAND|MILLION}. */
export function fractionalPercent(v: unknown, path: string): number {
  const o = optObj(v, path);
  if (!o) return 1;
  const num = optUint(o.numerator, `${path}.numerator`) ?? 0;
  const den = o.denominator ?? 'HUNDRED';
  const denom = den === 'HUNDRED' || den === 0 ? 100 : den === 'TEN_THOUSAND' || den === 1 ? 10_000 : den === 'MILLION' || den === 2 ? 1_000_000 : configError(`${path}.denominator`, `unknown denominator '${String(den)}'`);
  return Math.min(1, num / denom);
}

/** RuntimeFractionalPercent {default_value: FractionalPercent, runtime_key}: runtime keys are not supported, the default applies. */
export function runtimeFraction(v: unknown, path: string): number | undefined {
  const o = optObj(v, path);
  if (!o) return undefined;
  return fractionalPercent(o.default_value, `${path}.default_value`);
}

/** Compile a RE2 regex (safe_regex {regex}) for full-string matching; RE2 syntax is close enough to JS for the mesh's use. */
export function compileRegex(v: unknown, path: string, flags = ''): RegExp {
  const o = optObj(v, path);
  const src = o ? optStr(o.regex, `${path}.regex`) : undefined;
  if (src === undefined) configError(path, 'regex is required');
  try {
    return new RegExp(`^(?:${src})$`, flags);
  } catch (err) {
    return configError(`${path}.regex`, `invalid regex '${src}'`, err);
  }
}

/** Same regex without anchors, for regex_rewrite substitutions (global replace, as RE2::GlobalReplace). */
export function compileRewriteRegex(v: unknown, path: string): RegExp {
  const o = optObj(v, path);
  const src = o ? optStr(o.regex, `${path}.regex`) : undefined;
  if (src === undefined) configError(path, 'regex is required');
  try {
    return new RegExp(src, 'g');
  } catch (err) {
    return configError(`${path}.regex`, `invalid regex '${src}'`, err);
  }
}

/** Deeply freeze a parsed config object. */
export function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
