/**
 * Envoy access-log formats: a text line (`text_format_source.inline_string`, `text_format`) or a
 * JSON object (`json_format`), compiled once per config from Envoy's command operators (the grammar
 * of xds/format-string.ts). Header and address commands are evaluated by router/header-format.ts;
 * this module adds what only a finished request has (bytes, duration, response code details, the
 * raw cluster, the trace id). As Envoy: a command without a value is `-` in text and `null` in
 * JSON, and RESPONSE_CODE, BYTES_*, DURATION are JSON numbers.
 */
import type { HeaderMap } from '../upstream/types.ts';
import type { StreamInfo } from '../http/stream-info.ts';
import { formatCommand, type FormatContext } from '../router/header-format.ts';
import { parseFormatString, type FormatToken } from '../../xds/format-string.ts';

/** What a log line reads. */
export interface LogContext {
  readonly info: StreamInfo;
  readonly requestHeaders: HeaderMap;
  readonly responseHeaders: HeaderMap | undefined;
}

type Value = string | number | undefined;
type Cmd = (c: LogContext, f: FormatContext) => Value;

const Numeric = new Set(['RESPONSE_CODE', 'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION', 'UPSTREAM_REQUEST_ATTEMPT_COUNT']);

function traceIdOf(h: HeaderMap): string | undefined {
  const tp = h.traceparent;
  const v = Array.isArray(tp) ? tp[0] : tp;
  return v !== undefined && v.length >= 55 ? v.slice(3, 35) : undefined;
}

function command(t: Exclude<FormatToken, string>): Cmd {
  switch (t.command) {
    case 'BYTES_RECEIVED': return (c) => c.info.bytesReceived;
    case 'BYTES_SENT': return (c) => c.info.bytesSent;
    case 'DURATION': return (c) => (c.info.durationMs === undefined ? undefined : Math.round(c.info.durationMs));
    case 'RESPONSE_CODE': return (c) => c.info.responseCode;
    case 'RESPONSE_CODE_DETAILS': return (c) => c.info.responseCodeDetails || undefined;
    case 'UPSTREAM_CLUSTER_RAW': return (c) => c.info.clusterName;
    case 'UPSTREAM_REQUEST_ATTEMPT_COUNT': return (c) => c.info.attemptCount;
    case 'TRACE_ID': return (c) => traceIdOf(c.requestHeaders);
    case 'UPSTREAM_PEER_URI_SAN': return (c) => c.info.upstreamPeerPrincipal;
    case 'UPSTREAM_TRANSPORT_FAILURE_REASON': return (c) => c.info.upstreamTransportFailureReason;
    default: {
      const fn = formatCommand(t.command, t.arg);
      return (_c, f) => {
        const v = fn(f);
        return v === '' ? undefined : v;
      };
    }
  }
}

type Part = string | { readonly fn: Cmd; readonly max: number | undefined; readonly numeric: boolean };

function compileParts(format: string): Part[] {
  return parseFormatString(format).map((t) => (typeof t === 'string' ? t : { fn: command(t), max: t.max, numeric: Numeric.has(t.command) }));
}

function formatContext(c: LogContext): FormatContext {
  const i = c.info;
  return {
    info: i, method: i.method, path: i.path, authority: i.authority, scheme: i.scheme,
    requestHeaders: c.requestHeaders, responseHeaders: c.responseHeaders ?? {}, status: i.responseCode,
  };
}

function text(p: Exclude<Part, string>, c: LogContext, f: FormatContext): string {
  const v = p.fn(c, f);
  if (v === undefined) return '-';
  const s = String(v);
  return p.max === undefined ? s : s.slice(0, p.max);
}

/** A compiled format: a line (ending in a newline) per request. */
export type LogFormatter = (c: LogContext) => string;

/** A text format. */
export function textFormatter(format: string): LogFormatter {
  const parts = compileParts(format);
  return (c) => {
    const f = formatContext(c);
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : text(p, c, f);
    return out;
  };
}

/** A JSON format: one object per line, keys in the configured order. */
export function jsonFormatter(fields: Readonly<Record<string, string>>): LogFormatter {
  const compiled = Object.entries(fields).map(([k, v]) => [k, compileParts(v)] as const);
  return (c) => {
    const f = formatContext(c);
    const o: Record<string, unknown> = {};
    for (const [k, parts] of compiled) {
      if (parts.length === 1 && typeof parts[0] !== 'string') {
        const p = parts[0];
        const v = p.fn(c, f);
        o[k] = v === undefined ? null : p.numeric ? Number(v) : p.max === undefined ? String(v) : String(v).slice(0, p.max);
      } else {
        let s = '';
        for (const p of parts) s += typeof p === 'string' ? p : text(p, c, f);
        o[k] = s;
      }
    }
    return `${JSON.stringify(o)}\n`;
  };
}
