/**
 * The protobuf -> JSON half of the codec: turns decoded protobufjs messages into our proto3 JSON
 * form (defaults of implicit-presence fields omitted like Envoy's config_dump, 64-bit integers as
 * numbers when safe, well-known types in their JSON shapes, Anys decoded recursively or left raw).
 */
import { type FieldPlan, planOf, type TypePlan } from './json-plan.ts';
import { typeNameOfUrl } from './proto-root.ts';
import { fail, Long, planFor, vn, type DecodeOptions, type LongLike } from './codec-common.ts';

export type Msg = Record<string, unknown>;
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

export function decWkt(plan: TypePlan, m: Msg, opts: DecodeOptions): unknown {
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

export function decMessage(plan: TypePlan, m: Msg, opts: DecodeOptions): unknown {
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

export function decodeBytes(plan: TypePlan, bytes: Uint8Array): Msg {
  try {
    return plan.type.decode(bytes) as unknown as Msg;
  } catch (err) {
    return fail(plan.fullName, `malformed protobuf: ${(err as Error).message}`);
  }
}

