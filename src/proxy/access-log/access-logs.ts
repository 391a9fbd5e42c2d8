/**
 * The `access_log` list of an HttpConnectionManager (Envoy's config.accesslog.v3.AccessLog): file
 * loggers (`envoy.access_loggers.file`, also `/dev/stdout`) with a text or JSON format, each with an
 * optional filter: Envoy's CEL extension filter (`envoy.access_loggers.extension_filters.cel`, what
 * Istio generates from a Telemetry `filter.expression`), a `status_code_filter` or a
 * `response_flag_filter`. Compiled once per connection manager; per request only the filter's
 * attributes and the line are computed.
 */
import { configError, optArr, optObj, optStr, type Json } from '../xds-json.ts';
import { formatResponseFlags } from '../http/stream-info.ts';
import type { HeaderMap } from '../upstream/types.ts';
import { CelError, compileCel, evaluateCel, type CelValue } from '../../telemetry/cel.ts';
import { FormatStringError } from '../../xds/format-string.ts';
import { jsonFormatter, textFormatter, type LogContext, type LogFormatter } from './log-format.ts';
import type { LogFiles } from './log-files.ts';

const FileLogType = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const CelFilterType = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';
/** Envoy's default format when a file logger names none. */
const EnvoyDefaultFormat = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

type Filter = (c: LogContext) => boolean;

function headerMap(h: HeaderMap | undefined): ReadonlyMap<string, CelValue> {
  const m = new Map<string, CelValue>();
  for (const [k, v] of Object.entries(h ?? {})) m.set(k, Array.isArray(v) ? v.join(',') : v);
  return m;
}

/** Envoy's attribute names (the ones access-log filters use) for a finished request. */
function attribute(c: LogContext, path: string): CelValue | undefined {
  const i = c.info;
  switch (path) {
    case 'request.method': return i.method;
    case 'request.path': return i.path;
    case 'request.url_path': { const q = i.path.indexOf('?'); return q < 0 ? i.path : i.path.slice(0, q); }
    case 'request.host': return i.authority;
    case 'request.scheme': return i.scheme;
    case 'request.protocol': return i.protocol;
    case 'request.id': return i.requestId === '' ? undefined : i.requestId;
    case 'request.useragent': return i.userAgent;
    case 'request.headers': return headerMap(c.requestHeaders);
    case 'request.size': case 'request.total_size': return i.bytesReceived;
    case 'request.duration': return i.durationMs === undefined ? undefined : i.durationMs / 1000;
    case 'response.code': return i.responseCode;
    case 'response.code_details': return i.responseCodeDetails;
    case 'response.flags': return formatResponseFlags(i);
    case 'response.grpc_status': return i.grpcStatus;
    case 'response.size': case 'response.total_size': return i.bytesSent;
    case 'response.headers': return headerMap(c.responseHeaders);
    case 'connection.mtls': return i.connectionSecurity.policy === 'mutual_tls';
    case 'connection.requested_server_name': return i.downstreamTls?.sni ?? '';
    case 'source.address': return i.downstreamDirectRemoteAddress;
    case 'source.port': return i.downstreamDirectRemotePort;
    case 'source.principal': return i.connectionSecurity.peer?.spiffeId;
    case 'destination.address': return i.downstreamLocalAddress;
    case 'destination.port': return i.downstreamLocalPort;
    case 'upstream.address': return i.upstreamEndpoint;
    case 'xds.cluster_name': return i.clusterName;
    case 'xds.route_name': return i.routeName;
    default: return undefined;
  }
}

function celFilter(expression: string, path: string): Filter {
  let program;
  try {
    program = compileCel(expression);
  } catch (e) {
    if (e instanceof CelError) configError(path, `invalid CEL expression '${expression}': ${e.message}`);
    throw e;
  }
  return (c) => evaluateCel(program, (p) => attribute(c, p)) === true;
}

const Comparisons: Record<string, (a: number, b: number) => boolean> = { EQ: (a, b) => a === b, GE: (a, b) => a >= b, LE: (a, b) => a <= b };

function parseFilter(raw: Json, path: string): Filter {
  if (raw.extension_filter !== undefined) {
    const ext = optObj(raw.extension_filter, `${path}.extension_filter`)!;
    const tc = optObj(ext.typed_config, `${path}.extension_filter.typed_config`) ?? {};
    if (tc['@type'] !== CelFilterType) configError(`${path}.extension_filter.typed_config`, `unsupported access log filter ${String(tc['@type'] ?? ext.name)}`);
    const expr = optStr(tc.expression, `${path}.extension_filter.typed_config.expression`) ?? configError(`${path}.extension_filter.typed_config.expression`, 'is required');
    return celFilter(expr, `${path}.extension_filter.typed_config.expression`);
  }
  if (raw.status_code_filter !== undefined) {
    const cmp = optObj(optObj(raw.status_code_filter, `${path}.status_code_filter`)?.comparison, `${path}.status_code_filter.comparison`) ?? {};
    const op = optStr(cmp.op, `${path}.status_code_filter.comparison.op`) ?? 'EQ';
    const f = Comparisons[op] ?? configError(`${path}.status_code_filter.comparison.op`, `expected EQ, GE or LE, got '${op}'`);
    const v = Number((optObj(cmp.value, `${path}.status_code_filter.comparison.value`) ?? {}).default_value ?? 0);
    return (c) => f(c.info.responseCode, v);
  }
  if (raw.response_flag_filter !== undefined) {
    const flags = optArr(optObj(raw.response_flag_filter, `${path}.response_flag_filter`)?.flags, `${path}.response_flag_filter.flags`).map(String);
    return (c) => (flags.length === 0 ? c.info.responseFlags.size > 0 : flags.some((f) => c.info.responseFlags.has(f as never)));
  }
  return configError(path, 'supported filters: extension_filter (CEL), status_code_filter, response_flag_filter');
}

function formatter(fmt: Json | undefined, path: string): LogFormatter {
  try {
    if (fmt === undefined) return textFormatter(EnvoyDefaultFormat);
    const src = optObj(fmt.text_format_source, `${path}.text_format_source`);
    if (src !== undefined) return textFormatter(optStr(src.inline_string, `${path}.text_format_source.inline_string`) ?? configError(`${path}.text_format_source.inline_string`, 'is required (file sources are not supported)'));
    const text = optStr(fmt.text_format, `${path}.text_format`);
    if (text !== undefined) return textFormatter(text);
    const json = optObj(fmt.json_format, `${path}.json_format`);
    if (json !== undefined) {
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(json)) {
        if (typeof v !== 'string') configError(`${path}.json_format.${k}`, 'nested JSON formats are not supported; expected a format string');
        fields[k] = v;
      }
      return jsonFormatter(fields);
    }
    return textFormatter(EnvoyDefaultFormat);
  } catch (e) {
    if (e instanceof FormatStringError) configError(path, e.message);
    throw e;
  }
}

/** One configured logger. */
interface Logger {
  readonly filter: Filter | undefined;
  readonly format: LogFormatter;
  readonly write: (line: string) => void;
}

/** The compiled `access_log` list of one connection manager (or TCP proxy). */
export class AccessLogs {
  readonly #loggers: readonly Logger[];

  private constructor(loggers: readonly Logger[]) {
    this.#loggers = loggers;
  }

  /** Parses `access_log`; undefined when the list is empty. */
  static parse(raw: unknown, path: string, files: LogFiles): AccessLogs | undefined {
    const list = optArr(raw, path);
    if (list.length === 0) return undefined;
    const loggers = list.map((e, i): Logger => {
      const p = `${path}[${i}]`;
      const o = optObj(e, p) ?? configError(p, 'expected an AccessLog');
      const tc = optObj(o.typed_config, `${p}.typed_config`) ?? configError(`${p}.typed_config`, 'is required');
      if (tc['@type'] !== FileLogType) configError(`${p}.typed_config`, `unsupported access logger ${String(tc['@type'])} (envoy.access_loggers.file is supported)`);
      const file = optStr(tc.path, `${p}.typed_config.path`) ?? configError(`${p}.typed_config.path`, 'is required');
      const filterJson = optObj(o.filter, `${p}.filter`);
      return {
        filter: filterJson === undefined ? undefined : parseFilter(filterJson, `${p}.filter`),
        format: formatter(optObj(tc.log_format, `${p}.typed_config.log_format`), `${p}.typed_config.log_format`),
        write: files.writer(file),
      };
    });
    return new AccessLogs(loggers);
  }

  /** Logs a finished request to every logger whose filter accepts it. */
  log(c: LogContext): void {
    for (const l of this.#loggers) {
      if (l.filter !== undefined && !l.filter(c)) continue;
      l.write(l.format(c));
    }
  }
}
