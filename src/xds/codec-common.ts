/**
 * Shared pieces of the codec's two walks (codec-encode.ts, codec-decode.ts): the raw Any shape,
 * decode options, protobufjs's Long, the XDS_CODEC error helper, type lookup for Any URLs, and
 * the field names of google.protobuf.Value (which protobufjs bundles in camelCase).
 */
import protobuf from 'protobufjs';
import { TrellisError } from '../errors.ts';
import { planOf, type TypePlan } from './json-plan.ts';
import { lookupType } from './proto-root.ts';

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

export type LongLike = { low: number; high: number; unsigned: boolean; toString(): string; toNumber(): number };
interface LongStatics {
  fromNumber(n: number, unsigned?: boolean): LongLike;
  fromString(s: string, unsigned?: boolean): LongLike;
  isLong(v: unknown): boolean;
}
// protobufjs ships `long` and uses it for 64-bit fields; its typings only say "a constructor".
export const Long = protobuf.util.Long as unknown as LongStatics;

export function fail(where: string, message: string): never {
  throw new TrellisError('XDS_CODEC', `${where}: ${message}`, { context: { path: where } });
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `string ${JSON.stringify(v)}` : `${typeof v} ${String(v).slice(0, 40)}`;
}

export function planFor(fullName: string, path: string): TypePlan {
  try {
    return planOf(lookupType(fullName));
  } catch (err) {
    return fail(path, `unknown type '${fullName}' in Any (add its .proto to src/xds/proto-root.ts): ${(err as Error).message}`);
  }
}


// protobufjs bundles google.protobuf.Value with camelCase field names whatever keepCase says, so
// the names are looked up once instead of assumed.
let valueNames: Record<'null' | 'number' | 'string' | 'bool' | 'struct' | 'list', string> | undefined;
export function vn(): NonNullable<typeof valueNames> {
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

