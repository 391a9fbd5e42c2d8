/**
 * The xDS codec: converts between our JSON form of xDS resources (Envoy's proto3 JSON with proto
 * field names, see `types.ts`) and protobuf bytes, over the shared protobufjs root. protobufjs's
 * own fromObject/toObject do not implement the proto3 JSON mapping of well-known types (Duration
 * as "1.5s", wrappers as plain values, Any with "@type", Struct as plain JSON), so this module
 * walks the precomputed field plans of `json-plan.ts` itself. Unknown JSON fields, wrong value
 * types and two members of one oneof are errors (`XDS_CODEC`) naming the field path: that is how
 * translation bugs surface before a proxy ever sees the resource.
 */
import protobuf from 'protobufjs';
import { TrellisError } from '../errors.ts';
import { planOf, type FieldPlan, type TypePlan } from './json-plan.ts';
import { lookupType, typeNameOfUrl } from './proto-root.ts';
import type { XdsJson } from './types.ts';

export { lookupType, loadProtoFiles } from './proto-root.ts';

/** An Any in protobuf form: what travels on the wire inside DiscoveryResponse.resources. */
export interface AnyBytes {
  readonly type_url: string;
  readonly value: Uint8Array;
}

/** Decoding options. */
export interface DecodeOptions {
  /** Leave every `google.protobuf.Any` as raw `{type_url, value}` instead of decoding it. */
  readonly rawAny?: boolean;
}

type LongLike = { low: number; high: number; unsigned: boolean; toString(): string; toNumber(): number };
interface LongStatics {
  fromNumber(n: number, unsigned?: boolean): LongLike;
  fromString(s: string, unsigned?: boolean): LongLike;
  isLong(v: unknown): boolean;
}
// protobufjs ships `long` and uses it for 64-bit fields; its typings only say "a constructor".
const Long = protobuf.util.Long as unknown as LongStatics;

function fail(where: string, message: string): never {
  throw new TrellisError('XDS_CODEC', `${where}: ${message}`, { context: { path: where } });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `string ${JSON.stringify(v)}` : `${typeof v} ${String(v).slice(0, 40)}`;
}

// ---------------------------------------------------------------- JSON -> protobufjs object

const int32Range: Record<string, [number, number]> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};

function encScalar(type: string, v: unknown, path: string): unknown {
  switch (type) {
    case 'string':
      if (typeof v !== 'string') fail(path, `expected a string, got ${describe(v)}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') fail(path, `expected a boolean, got ${describe(v)}`);
      return v;
    case 'bytes':
      if (v instanceof Uint8Array) return v;
      if (typeof v !== 'string') fail(path, `expected base64 bytes, got ${describe(v)}`);
      return Buffer.from(v, 'base64');
    case 'double':
    case 'float':
      if (typeof v === 'number') return v;
      if (v === 'NaN') return NaN;
      if (v === 'Infinity') return Infinity;
      if (v === '-Infinity') return -Infinity;
      if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
      return fail(path, `expected a number, got ${describe(v)}`);
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64': {
      const unsigned = type === 'uint64' || type === 'fixed64';
      if (typeof v === 'number' && Number.isInteger(v) && (!unsigned || v >= 0)) return Long.fromNumber(v, unsigned);
      if (typeof v === 'string' && /^-?\d+$/.test(v) && (!unsigned || !v.startsWith('-'))) {
        const big = BigInt(v);
        const max = unsigned ? (1n << 64n) - 1n : (1n << 63n) - 1n;
        const min = unsigned ? 0n : -(1n << 63n);
        if (big > max || big < min) fail(path, `${type} out of range: ${v}`);
        return Long.fromString(v, unsigned);
      }
      return fail(path, `expected an integer (${type}), got ${describe(v)}`);
    }
    default: {
      const range = int32Range[type];
      if (range === undefined) return fail(path, `unsupported scalar type ${type}`);
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < range[0] || n > range[1]) {
        fail(path, `expected an integer (${type}), got ${describe(v)}`);
      }
      return n;
    }
  }
}

function encEnum(e: protobuf.Enum, v: unknown, path: string): number {
  if (typeof v === 'string') {
    const n = e.values[v];
    if (n === undefined) fail(path, `unknown ${e.name} value '${v}' (one of ${Object.keys(e.values).join(', ')})`);
    return n;
  }
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  return fail(path, `expected an enum name of ${e.name}, got ${describe(v)}`);
}

function encField(f: FieldPlan, v: unknown, path: string): unknown {
  if (f.messageType !== undefined) return encMessage(planOf(f.messageType), v, path);
  if (f.enumType !== undefined) return encEnum(f.enumType, v, path);
  return encScalar(f.scalar ?? 'string', v, path);
}

const durationRe = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const timestampRe = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i;

// protobufjs bundles google.protobuf.Value with camelCase field names whatever keepCase says, so
// the names are looked up once instead of assumed.
let valueNames: Record<'null' | 'number' | 'string' | 'bool' | 'struct' | 'list', string> | undefined;
function vn(): NonNullable<typeof valueNames> {
  if (valueNames !== undefined) return valueNames;
  const p = planOf(lookupType('google.protobuf.Value'));
  const name = (camelKey: string): string => p.byKey.get(camelKey)?.name ?? camelKey;
  valueNames = {
    null: name('nullValue'),
    number: name('numberValue'),
    string: name('stringValue'),
    bool: name('boolValue'),
    struct: name('structValue'),
    list: name('listValue'),
  };
  return valueNames;
}

function encValueWkt(v: unknown, path: string): Record<string, unknown> {
  const n = vn();
  if (v === null) return { [n.null]: 0 };
  if (typeof v === 'number') return { [n.number]: v };
  if (typeof v === 'string') return { [n.string]: v };
  if (typeof v === 'boolean') return { [n.bool]: v };
  if (Array.isArray(v)) return { [n.list]: { values: v.map((x, i) => encValueWkt(x, `${path}[${i}]`)) } };
  if (isObject(v)) return { [n.struct]: encStruct(v, path) };
  return fail(path, `cannot represent ${describe(v)} as google.protobuf.Value`);
}

function encStruct(v: unknown, path: string): Record<string, unknown> {
  if (!isObject(v)) fail(path, `expected an object (Struct), got ${describe(v)}`);
  const fields: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) fields[k] = encValueWkt(x, `${path}.${k}`);
  return { fields };
}

function encWkt(plan: TypePlan, v: unknown, path: string): Record<string, unknown> {
  switch (plan.wkt) {
    case 'duration': {
      const m = typeof v === 'string' ? durationRe.exec(v) : null;
      if (m === null) return fail(path, `expected a duration like "1.5s", got ${describe(v)}`);
      const sign = m[1] === '-' ? -1 : 1;
      const nanos = m[3] === undefined ? 0 : Number(m[3].padEnd(9, '0'));
      return { seconds: Long.fromString((sign < 0 ? '-' : '') + m[2]), nanos: sign * nanos };
    }
    case 'timestamp': {
      const m = typeof v === 'string' ? timestampRe.exec(v) : null;
      const ms = m === null ? NaN : Date.parse(m[1] + 'Z') - offsetMs(m[3]);
      if (m === null || Number.isNaN(ms)) return fail(path, `expected an RFC 3339 timestamp, got ${describe(v)}`);
      return { seconds: Long.fromNumber(Math.floor(ms / 1000)), nanos: m[2] === undefined ? 0 : Number(m[2].padEnd(9, '0')) };
    }
    case 'wrapper': {
      const f = plan.byKey.get('value');
      if (f === undefined) return fail(path, `${plan.fullName} has no value field`);
      return { value: encScalar(f.scalar ?? 'string', v, path) };
    }
    case 'struct':
      return encStruct(v, path);
    case 'value':
      return encValueWkt(v, path);
    case 'listvalue':
      if (!Array.isArray(v)) return fail(path, `expected an array (ListValue), got ${describe(v)}`);
      return { values: v.map((x, i) => encValueWkt(x, `${path}[${i}]`)) };
    case 'fieldmask':
      if (typeof v !== 'string') return fail(path, `expected a field mask string, got ${describe(v)}`);
      return { paths: v === '' ? [] : v.split(',').map((p) => p.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())) };
    case 'empty':
      if (!isObject(v) || Object.keys(v).length > 0) fail(path, `expected {} (Empty), got ${describe(v)}`);
      return {};
    case 'any':
      return encAny(v, path) as unknown as Record<string, unknown>;
    default:
      return fail(path, `unhandled well-known type ${plan.fullName}`);
  }
}

function offsetMs(tz: string): number {
  if (tz === 'Z' || tz === 'z') return 0;
  const sign = tz.startsWith('-') ? -1 : 1;
  return sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60_000;
}

function encAny(v: unknown, path: string): AnyBytes {
  if (!isObject(v)) return fail(path, `expected an Any object with "@type", got ${describe(v)}`);
  const url = v['@type'];
  if (url === undefined && typeof v.type_url === 'string' && v.value instanceof Uint8Array) {
    return { type_url: v.type_url, value: v.value }; // already encoded
  }
  if (typeof url !== 'string' || url === '') return fail(path, 'Any without "@type"');
  const plan = planFor(typeNameOfUrl(url), path);
  let body: unknown;
  if (plan.wkt !== undefined) {
    body = v.value;
    for (const k of Object.keys(v)) if (k !== '@type' && k !== 'value') fail(`${path}.${k}`, `unknown field '${k}' in Any of ${plan.fullName}`);
  } else {
    const rest: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== '@type') rest[k] = x;
    body = rest;
  }
  const obj = encMessage(plan, body, path);
  return { type_url: url, value: plan.type.encode(obj).finish() };
}

function planFor(fullName: string, path: string): TypePlan {
  try {
    return planOf(lookupType(fullName));
  } catch (err) {
    return fail(path, `unknown type '${fullName}' in Any (add its .proto to src/xds/proto-root.ts): ${(err as Error).message}`);
  }
}

function encMessage(plan: TypePlan, v: unknown, path: string): Record<string, unknown> {
  if (plan.wkt !== undefined) return encWkt(plan, v, path);
  if (!isObject(v)) return fail(path, `expected an object (${plan.fullName}), got ${describe(v)}`);
  const out: Record<string, unknown> = {};
  let oneofs: Map<string, string> | undefined;
  for (const key of Object.keys(v)) {
    const x = v[key];
    const f = plan.byKey.get(key);
    const fpath = `${path}.${key}`;
    if (f === undefined) return fail(fpath, `unknown field '${key}' in ${plan.fullName}`);
    // proto3 JSON: null means "not set", except for google.protobuf.Value where it is NULL_VALUE.
    // An `undefined` property (an optional field left out in TypeScript) is "not set" too.
    if (x === undefined) continue;
    if (x === null && !(f.messageType !== undefined && planOf(f.messageType).wkt === 'value')) continue;
    if (f.oneof !== undefined) {
      oneofs ??= new Map();
      const prev = oneofs.get(f.oneof);
      if (prev !== undefined) fail(fpath, `'${prev}' and '${f.name}' are both set but belong to oneof '${f.oneof}'`);
      oneofs.set(f.oneof, f.name);
    }
    if (f.map) {
      if (!isObject(x)) return fail(fpath, `expected an object (map), got ${describe(x)}`);
      const m: Record<string, unknown> = {};
      for (const [mk, mv] of Object.entries(x)) m[mk] = encField(f, mv, `${fpath}.${mk}`);
      out[f.name] = m;
    } else if (f.repeated) {
      if (!Array.isArray(x)) return fail(fpath, `expected an array, got ${describe(x)}`);
      out[f.name] = x.map((e, i) => encField(f, e, `${fpath}[${i}]`));
    } else {
      out[f.name] = encField(f, x, fpath);
    }
  }
  return out;
}

// ---------------------------------------------------------------- protobufjs message -> JSON

type Msg = Record<string, unknown>;
const hasOwn = Object.prototype.hasOwnProperty;

function decScalar(type: string, v: unknown): unknown {
  if (Long.isLong(v)) {
    const l = v as LongLike;
    const n = l.toNumber();
    return Number.isSafeInteger(n) ? n : l.toString();
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '-Infinity';
    if (type === 'float') return shortestFloat(v);
  }
  return v;
}

/** The shortest decimal that reads back as the same float32 (0.1f decodes as 0.100000001...). */
function shortestFloat(v: number): number {
  for (let p = 1; p <= 9; p++) {
    const c = Number(v.toPrecision(p));
    if (Math.fround(c) === v) return c;
  }
  return v;
}

function isDefault(f: FieldPlan, v: unknown): boolean {
  if (v === 0 || v === '' || v === false) return true;
  if (v instanceof Uint8Array) return v.length === 0;
  if (Long.isLong(v)) return (v as LongLike).low === 0 && (v as LongLike).high === 0;
  return false;
}

function decField(f: FieldPlan, v: unknown, opts: DecodeOptions): unknown {
  if (f.messageType !== undefined) return decMessage(planOf(f.messageType), v as Msg, opts);
  if (f.enumType !== undefined) return f.enumType.valuesById[v as number] ?? v;
  return decScalar(f.scalar ?? 'string', v);
}

function formatNanos(nanos: number): string {
  if (nanos === 0) return '';
  const s = String(Math.abs(nanos)).padStart(9, '0');
  return '.' + (s.endsWith('000000') ? s.slice(0, 3) : s.endsWith('000') ? s.slice(0, 6) : s);
}

function decValueWkt(m: Msg): unknown {
  const n = vn();
  if (hasOwn.call(m, n.number)) return decScalar('double', m[n.number]);
  if (hasOwn.call(m, n.string)) return m[n.string];
  if (hasOwn.call(m, n.bool)) return m[n.bool];
  if (hasOwn.call(m, n.struct)) return decStruct(m[n.struct] as Msg);
  if (hasOwn.call(m, n.list)) return (((m[n.list] as Msg).values ?? []) as Msg[]).map(decValueWkt);
  return null;
}

function decStruct(m: Msg): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = (m.fields ?? {}) as Record<string, Msg>;
  for (const k of Object.keys(fields)) out[k] = decValueWkt(fields[k]);
  return out;
}

function decWkt(plan: TypePlan, m: Msg, opts: DecodeOptions): unknown {
  switch (plan.wkt) {
    case 'duration': {
      const secs = decScalar('int64', m.seconds);
      const nanos = (m.nanos as number) ?? 0;
      const neg = String(secs).startsWith('-') || nanos < 0;
      return `${neg && !String(secs).startsWith('-') ? '-' : ''}${secs}${formatNanos(nanos)}s`;
    }
    case 'timestamp': {
      const secs = Number(decScalar('int64', m.seconds));
      const iso = new Date(secs * 1000).toISOString().slice(0, 19);
      return `${iso}${formatNanos((m.nanos as number) ?? 0)}Z`;
    }
    case 'wrapper': {
      const f = plan.byKey.get('value') as FieldPlan;
      return decScalar(f.scalar ?? 'string', m.value);
    }
    case 'struct':
      return decStruct(m);
    case 'value':
      return decValueWkt(m);
    case 'listvalue':
      return ((m.values ?? []) as Msg[]).map(decValueWkt);
    case 'fieldmask':
      return ((m.paths ?? []) as string[]).map((p) => p.replace(/_([a-z0-9])/g, (_x, c: string) => c.toUpperCase())).join(',');
    case 'empty':
      return {};
    case 'any': {
      const url = String(m.type_url ?? '');
      const bytes = (m.value ?? new Uint8Array(0)) as Uint8Array;
      if (opts.rawAny === true) return { type_url: url, value: bytes };
      const inner = planFor(typeNameOfUrl(url), url);
      const body = decMessage(inner, decodeBytes(inner, bytes), opts);
      return inner.wkt !== undefined ? { '@type': url, value: body } : { '@type': url, ...(body as object) };
    }
    default:
      return fail(plan.fullName, 'unhandled well-known type');
  }
}

function decMessage(plan: TypePlan, m: Msg, opts: DecodeOptions): unknown {
  if (plan.wkt !== undefined) return decWkt(plan, m, opts);
  const out: Record<string, unknown> = {};
  for (const f of plan.fields) {
    const v = m[f.name];
    if (v === undefined || v === null) continue;
    if (f.map) {
      const keys = Object.keys(v as object);
      if (keys.length === 0) continue;
      const o: Record<string, unknown> = {};
      for (const k of keys) o[k] = decField(f, (v as Record<string, unknown>)[k], opts);
      out[f.name] = o;
    } else if (f.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      out[f.name] = arr.map((e) => decField(f, e, opts));
    } else {
      if (!hasOwn.call(m, f.name)) continue;
      if (!f.presence && isDefault(f, v)) continue;
      out[f.name] = decField(f, v, opts);
    }
  }
  return out;
}

function decodeBytes(plan: TypePlan, bytes: Uint8Array): Msg {
  try {
    return plan.type.decode(bytes) as unknown as Msg;
  } catch (err) {
    return fail(plan.fullName, `malformed protobuf: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------- public API

/** Encodes a message given by full name (`envoy.config.core.v3.Node`) from our JSON form. */
export function encodeMessage(fullName: string, json: unknown): Uint8Array {
  const plan = planFor(fullName, fullName);
  return plan.type.encode(encMessage(plan, json, plan.fullName)).finish();
}

/** Decodes protobuf bytes of a message given by full name into our JSON form. */
export function decodeMessage(fullName: string, bytes: Uint8Array, opts: DecodeOptions = {}): XdsJson {
  const plan = planFor(fullName, fullName);
  return decMessage(plan, decodeBytes(plan, bytes), opts) as XdsJson;
}

/**
 * Encodes one xDS resource. `json` may carry a top-level "@type" (it must then equal `typeUrl`).
 * @example encodeResource(TypeUrl.Cluster, { name: 'c', connect_timeout: '1s' })
 */
export function encodeResource(typeUrl: string, json: XdsJson): Uint8Array {
  const t = json['@type'];
  if (t !== undefined && t !== typeUrl) fail(typeNameOfUrl(typeUrl), `"@type" is ${String(t)}, expected ${typeUrl}`);
  if (t === undefined) return encodeMessage(typeNameOfUrl(typeUrl), json);
  const { ['@type']: _drop, ...rest } = json;
  return encodeMessage(typeNameOfUrl(typeUrl), rest);
}

/** Decodes one xDS resource into our JSON form (without a top-level "@type"). */
export function decodeResource(typeUrl: string, bytes: Uint8Array): XdsJson {
  return decodeMessage(typeNameOfUrl(typeUrl), bytes);
}

/** Our JSON form with "@type" -> protobuf Any. */
export function toAny(json: XdsJson): AnyBytes {
  return encAny(json, typeof json['@type'] === 'string' ? typeNameOfUrl(json['@type']) : 'Any');
}

/** Protobuf Any -> our JSON form with "@type" (nested Anys decoded too). */
export function fromAny(any: AnyBytes): XdsJson {
  return decWkt(planOf(lookupType('google.protobuf.Any')), any as unknown as Msg, {}) as XdsJson;
}
