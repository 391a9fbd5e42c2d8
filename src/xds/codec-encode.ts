/**
 * The JSON -> protobuf half of the codec: walks our proto3 JSON form over the field plans and
 * builds the plain objects protobufjs's encoders take (Long for 64-bit, numbers for enums, bytes
 * for nested Anys), checking every field name and value type on the way and naming the path.
 */
import protobuf from 'protobufjs';
import { planOf, type FieldPlan, type TypePlan } from './json-plan.ts';
import { typeNameOfUrl } from './proto-root.ts';
import { describe, fail, isObject, Long, planFor, vn, type AnyBytes } from './codec-common.ts';

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

export function encAny(v: unknown, path: string): AnyBytes {
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

export function encMessage(plan: TypePlan, v: unknown, path: string): Record<string, unknown> {
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

