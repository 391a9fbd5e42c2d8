/**
 * Precomputed per-message "field plans" over protobufjs reflection: for every message type, its
 * fields with what the proto3 JSON walk needs to know (scalar kind, enum, nested plan, map key,
 * repeated, presence, oneof) and a lookup by JSON key (proto name and lowerCamel json name, both
 * accepted as the proto3 JSON spec asks). Built once per type on first use, so encoding and
 * decoding never go back to reflection in the inner loop.
 */
import protobuf from 'protobufjs';

/** Well-known types whose proto3 JSON form is special. */
export type WktKind =
  | 'any'
  | 'duration'
  | 'timestamp'
  | 'struct'
  | 'value'
  | 'listvalue'
  | 'fieldmask'
  | 'empty'
  | 'wrapper';

export interface FieldPlan {
  /** Proto field name (snake_case), the key of our JSON form and of protobufjs objects. */
  readonly name: string;
  readonly jsonName: string;
  readonly repeated: boolean;
  readonly map: boolean;
  /** Map key scalar type (`string`, `int32`...), maps only. */
  readonly keyType: string | undefined;
  /** Scalar type name (`int64`, `bytes`...) when not an enum/message. */
  readonly scalar: string | undefined;
  readonly enumType: protobuf.Enum | undefined;
  /** Nested message type (resolved lazily via plan()). */
  readonly messageType: protobuf.Type | undefined;
  /** Oneof this field belongs to (real oneofs only, not proto3 `optional`). */
  readonly oneof: string | undefined;
  /** True when a default value must still be emitted (oneof member, proto3 optional, message). */
  readonly presence: boolean;
}

export interface TypePlan {
  readonly type: protobuf.Type;
  /** Full name without the leading dot. */
  readonly fullName: string;
  readonly fields: readonly FieldPlan[];
  readonly byKey: ReadonlyMap<string, FieldPlan>;
  readonly wkt: WktKind | undefined;
}

const wktByName: Record<string, WktKind> = {
  'google.protobuf.Any': 'any',
  'google.protobuf.Duration': 'duration',
  'google.protobuf.Timestamp': 'timestamp',
  'google.protobuf.Struct': 'struct',
  'google.protobuf.Value': 'value',
  'google.protobuf.ListValue': 'listvalue',
  'google.protobuf.FieldMask': 'fieldmask',
  'google.protobuf.Empty': 'empty',
  'google.protobuf.DoubleValue': 'wrapper',
  'google.protobuf.FloatValue': 'wrapper',
  'google.protobuf.Int64Value': 'wrapper',
  'google.protobuf.UInt64Value': 'wrapper',
  'google.protobuf.Int32Value': 'wrapper',
  'google.protobuf.UInt32Value': 'wrapper',
  'google.protobuf.BoolValue': 'wrapper',
  'google.protobuf.StringValue': 'wrapper',
  'google.protobuf.BytesValue': 'wrapper',
};

const plans = new WeakMap<protobuf.Type, TypePlan>();

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** The plan for a message type (cached). */
export function planOf(type: protobuf.Type): TypePlan {
  const cached = plans.get(type);
  if (cached !== undefined) return cached;
  const fullName = type.fullName.startsWith('.') ? type.fullName.slice(1) : type.fullName;
  const fields: FieldPlan[] = [];
  const byKey = new Map<string, FieldPlan>();
  for (const f of type.fieldsArray) {
    f.resolve();
    const resolved = f.resolvedType;
    const realOneof = f.partOf !== null && f.partOf !== undefined && !f.partOf.name.startsWith('_') ? f.partOf.name : undefined;
    const isMessage = resolved instanceof protobuf.Type;
    const fp: FieldPlan = {
      name: f.name,
      jsonName: camel(f.name),
      repeated: f.repeated,
      map: f.map,
      keyType: f.map ? (f as unknown as protobuf.MapField).keyType : undefined,
      scalar: resolved === null || resolved === undefined ? f.type : undefined,
      enumType: resolved instanceof protobuf.Enum ? resolved : undefined,
      messageType: isMessage ? resolved : undefined,
      oneof: realOneof,
      presence: realOneof !== undefined || (f.partOf !== null && f.partOf !== undefined) || isMessage,
    };
    fields.push(fp);
    byKey.set(fp.name, fp);
    if (!byKey.has(fp.jsonName)) byKey.set(fp.jsonName, fp);
  }
  const plan: TypePlan = { type, fullName, fields, byKey, wkt: wktByName[fullName] };
  plans.set(type, plan);
  return plan;
}
