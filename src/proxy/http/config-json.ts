/**
 * Reading Envoy proto3 JSON (xDS resources) into typed values at the config edge: durations
 * ("1.5s"), fractional percents, wrapper values, enums given as names, all with a precise field
 * path in every error so the xDS client can NACK with "route_config.virtual_hosts[0].routes[2]...".
 * Nothing here runs per request.
 */
import { TrellisError } from '../../errors.ts';

/** A JSON object from an xDS resource. */
export type Json = { readonly [k: string]: unknown };

/** Error code for every invalid HTTP engine config (route tables, HCM, filters). */
export const HTTP_CONFIG_INVALID = 'HTTP_CONFIG_INVALID';

/** Throw a config error naming the field path. */
export function configError(path: string, message: string, cause?: unknown): never {
  throw new TrellisError(HTTP_CONFIG_INVALID, `${path}: ${message}`, { cause, context: { path } });
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
  if (!Array.isArray(v)) configError(path, 'expected an array');
  return v;
}

export function optStr(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') configError(path, 'expected a string');
  return v;
}

export function optBool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && v !== null && 'value' in v) return optBool((v as Json).value, path);
  if (typeof v !== 'boolean') configError(path, 'expected a boolean');
  return v;
}

/** Unsigned integer; proto3 JSON may carry 64-bit ints as strings, wrappers as plain values. */
export function optUint(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && v !== null && 'value' in v) return optUint((v as Json).value, path);
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) configError(path, 'expected a non-negative integer');
  return n;
}

/** Duration "1.5s" (proto3 JSON) or {seconds, nanos}; returns milliseconds. */
export function optDurationMs(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    const m = /^(-?\d+(?:\.\d{1,9})?)s$/.exec(v);
    if (!m) configError(path, `invalid duration '${v}' (expected like "1.5s")`);
    const ms = Number(m[1]) * 1000;
    if (ms < 0) configError(path, 'duration must not be negative');
    return ms;
  }
  if (isObj(v)) {
    const s = Number(v.seconds ?? 0);
    const n = Number(v.nanos ?? 0);
    if (!Number.isFinite(s) || !Number.isFinite(n) || s < 0 || n < 0) configError(path, 'invalid duration');
    return s * 1000 + n / 1e6;
  }
  return configError(path, 'expected a duration string like "1.5s"');
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
