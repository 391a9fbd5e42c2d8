/**
 * Trace context on the wire: W3C Trace Context (`traceparent` / `tracestate`) and Zipkin's B3, in
 * its single-header (`b3`) and multi-header (`x-b3-*`) forms, read from a request and written on
 * the request a proxy forwards. Ids are lower-case hex: trace ids 32 digits (a 64-bit B3 trace id
 * is left-padded with zeros, as W3C asks), span ids 16. Parsing is strict (wrong lengths, upper
 * case, all-zero ids and W3C version ff are "no context"), so junk from a client starts a new
 * trace instead of poisoning one.
 *
 * Which header wins: `traceparent`, then `b3`, then `x-b3-traceid`/`x-b3-spanid`. A sampling
 * decision without ids (`b3: 0`, `x-b3-sampled: 0` alone) is still a decision the next hop honours.
 */
import { randomFillSync } from 'node:crypto';

/** Request headers as proxies carry them: lower-case names, repeated headers as arrays. */
export type TraceHeaders = Record<string, string | string[]>;

/** What an incoming request says about its trace. */
export interface IncomingTrace {
  /** 32 hex digits; undefined when the request carried only a sampling decision. */
  readonly traceId: string | undefined;
  /** The caller's span (16 hex digits): the parent of the span this hop starts. */
  readonly parentSpanId: string | undefined;
  /** The caller's decision: true / false, undefined when it left it to us (B3 "defer"). */
  readonly sampled: boolean | undefined;
  /** W3C tracestate, passed on unchanged. */
  readonly tracestate: string | undefined;
  /** The request used the single `b3` header (it is written back in that form too). */
  readonly b3Single: boolean;
}

const Hex32 = /^[0-9a-f]{32}$/;
const Hex16 = /^[0-9a-f]{16}$/;
const Hex2 = /^[0-9a-f]{2}$/;
const ZeroTrace = '00000000000000000000000000000000';
const ZeroSpan = '0000000000000000';

function one(h: TraceHeaders, name: string): string | undefined {
  const v = h[name];
  return v === undefined ? undefined : Array.isArray(v) ? v[0] : v;
}

function traceId(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const id = v.length === 16 ? `0000000000000000${v}` : v;
  return Hex32.test(id) && id !== ZeroTrace ? id : undefined;
}

function spanId(v: string | undefined): string | undefined {
  return v !== undefined && Hex16.test(v) && v !== ZeroSpan ? v : undefined;
}

function b3Sampled(v: string | undefined): boolean | undefined {
  if (v === '1' || v === 'd' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

/** W3C `traceparent` (version 00, or a later version's first four fields, as the spec asks). */
function fromTraceparent(v: string, h: TraceHeaders): IncomingTrace | undefined {
  if (v.length < 55 || v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const version = v.slice(0, 2);
  if (!Hex2.test(version) || version === 'ff' || (version === '00' && v.length !== 55)) return undefined;
  const t = traceId(v.slice(3, 35));
  const s = spanId(v.slice(36, 52));
  const flags = v.slice(53, 55);
  if (t === undefined || s === undefined || !Hex2.test(flags)) return undefined;
  return { traceId: t, parentSpanId: s, sampled: (parseInt(flags, 16) & 1) === 1, tracestate: one(h, 'tracestate'), b3Single: false };
}

/** B3 single header: `{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, or just the decision. */
function fromB3Single(v: string): IncomingTrace | undefined {
  const parts = v.split('-');
  if (parts.length === 1) {
    const sampled = b3Sampled(parts[0]);
    return sampled === undefined ? undefined : { traceId: undefined, parentSpanId: undefined, sampled, tracestate: undefined, b3Single: true };
  }
  const t = traceId(parts[0]);
  const s = spanId(parts[1]);
  if (t === undefined || s === undefined || parts.length > 4) return undefined;
  return { traceId: t, parentSpanId: s, sampled: b3Sampled(parts[2]), tracestate: undefined, b3Single: true };
}

/** The trace a request belongs to, or undefined when it carries none of the formats. */
export function extractTrace(h: TraceHeaders): IncomingTrace | undefined {
  const tp = one(h, 'traceparent');
  if (tp !== undefined) {
    const w3c = fromTraceparent(tp, h);
    if (w3c !== undefined) return w3c;
  }
  const single = one(h, 'b3');
  if (single !== undefined) {
    const b3 = fromB3Single(single);
    if (b3 !== undefined) return b3;
  }
  const flags = one(h, 'x-b3-flags');
  const sampled = flags === '1' ? true : b3Sampled(one(h, 'x-b3-sampled'));
  const t = traceId(one(h, 'x-b3-traceid'));
  const s = spanId(one(h, 'x-b3-spanid'));
  if (t !== undefined && s !== undefined) return { traceId: t, parentSpanId: s, sampled, tracestate: undefined, b3Single: false };
  if (sampled !== undefined) return { traceId: undefined, parentSpanId: undefined, sampled, tracestate: undefined, b3Single: false };
  return undefined;
}

/**
 * Writes this hop's span as the current context of the forwarded request, in every format (W3C and
 * B3 multi; the single `b3` header too when the request came with it), so an application that
 * propagates either format continues the trace.
 */
export function injectTrace(h: TraceHeaders, trace: string, span: string, parent: string | undefined, sampled: boolean, tracestate: string | undefined, b3Single: boolean): void {
  h.traceparent = `00-${trace}-${span}-${sampled ? '01' : '00'}`;
  if (tracestate !== undefined && tracestate !== '') h.tracestate = tracestate;
  else delete h.tracestate;
  h['x-b3-traceid'] = trace;
  h['x-b3-spanid'] = span;
  if (parent !== undefined) h['x-b3-parentspanid'] = parent;
  else delete h['x-b3-parentspanid'];
  h['x-b3-sampled'] = sampled ? '1' : '0';
  delete h['x-b3-flags'];
  if (b3Single) h.b3 = `${trace}-${span}-${sampled ? '1' : '0'}${parent !== undefined ? `-${parent}` : ''}`;
  else delete h.b3;
}

// Ids come from a pooled random buffer: one randomFillSync per 256 ids, not one per id.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const s = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return s;
}

/** A new random trace id (32 hex digits, never all zero). */
export function newTraceId(): string {
  const id = randomHex(16);
  return id === ZeroTrace ? newTraceId() : id;
}

/** A new random span id (16 hex digits, never all zero). */
export function newSpanId(): string {
  const id = randomHex(8);
  return id === ZeroSpan ? newSpanId() : id;
}
