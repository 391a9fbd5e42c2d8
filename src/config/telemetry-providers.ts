/**
 * The telemetry part of MeshConfig, read for mesh-config.ts (the one MeshConfig reader):
 * `extensionProviders` of the kinds Trellis acts on (`opentelemetry` and `zipkin` tracers,
 * `envoyFileAccessLog`, `prometheus`), Istio's built-in providers (`envoy`: access log to
 * /dev/stdout; `prometheus`), `defaultProviders`, `enableTracing`, `defaultConfig.tracing.sampling`
 * and the legacy `accessLogFile` / `accessLogEncoding` / `accessLogFormat`. Providers of other
 * kinds (skywalking, datadog, envoyExtAuthz*, ...) are kept by name as `other`, so a Telemetry
 * naming them is recognised and reported rather than mistaken for a typo.
 */

export interface TracingHttpSettings {
  /** OTLP/HTTP path (Istio's default `/v1/traces`). */
  readonly path: string;
  readonly timeoutMs: number;
  readonly headers: readonly { readonly name: string; readonly value: string }[];
}

export type TelemetryProvider =
  | { readonly kind: 'opentelemetry'; readonly name: string; readonly service: string; readonly port: number; readonly http: TracingHttpSettings | undefined; readonly maxTagLength: number | undefined }
  | { readonly kind: 'zipkin'; readonly name: string; readonly service: string; readonly port: number; readonly maxTagLength: number | undefined }
  | { readonly kind: 'envoyFileAccessLog'; readonly name: string; readonly path: string; readonly text: string | undefined; readonly labels: Readonly<Record<string, string>> | undefined }
  | { readonly kind: 'prometheus'; readonly name: string }
  | { readonly kind: 'other'; readonly name: string; readonly type: string };

export interface MeshTelemetry {
  /** By name; Istio's built-ins `envoy` and `prometheus` unless the mesh config redefines them. */
  readonly providers: readonly TelemetryProvider[];
  readonly defaultProviders: { readonly tracing: readonly string[]; readonly accessLogging: readonly string[]; readonly metrics: readonly string[] };
  /** MeshConfig enableTracing (Istio's default: true). */
  readonly enableTracing: boolean;
  /** defaultConfig.tracing.sampling, percent (Istio's default: 1). */
  readonly defaultSamplingPercent: number;
  /** Legacy mesh-wide access logging: a path turns it on for every proxy. */
  readonly accessLogFile: string | undefined;
  readonly accessLogEncoding: 'TEXT' | 'JSON';
  readonly accessLogFormat: string | undefined;
}

/** Istio's built-in providers. */
const BuiltIn: readonly TelemetryProvider[] = Object.freeze([
  Object.freeze({ kind: 'envoyFileAccessLog' as const, name: 'envoy', path: '/dev/stdout', text: undefined, labels: undefined }),
  Object.freeze({ kind: 'prometheus' as const, name: 'prometheus' }),
]);

export const DefaultMeshTelemetry: MeshTelemetry = Object.freeze({
  providers: BuiltIn,
  defaultProviders: Object.freeze({ tracing: [], accessLogging: [], metrics: ['prometheus'] }),
  enableTracing: true,
  defaultSamplingPercent: 1,
  accessLogFile: undefined,
  accessLogEncoding: 'TEXT',
  accessLogFormat: undefined,
});

type Bad = (field: string, msg: string) => Error;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function durationMs(v: unknown, field: string, bad: Bad): number | undefined {
  if (v === undefined) return undefined;
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v) : null;
  if (m === null) throw bad(field, `expected a duration like "5s", got ${JSON.stringify(v)}`);
  return Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000));
}

function serviceAndPort(o: Record<string, unknown>, at: string, bad: Bad): { service: string; port: number } {
  if (typeof o.service !== 'string' || o.service === '') throw bad(`${at}.service`, 'the collector service (a hostname, or namespace/hostname) is required');
  const port = o.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw bad(`${at}.port`, `expected a port number, got ${JSON.stringify(port)}`);
  // Istio accepts `namespace/hostname`; the hostname is what names the cluster.
  const slash = o.service.indexOf('/');
  return { service: slash >= 0 ? o.service.slice(slash + 1) : o.service, port };
}

function maxTagLength(o: Record<string, unknown>, at: string, bad: Bad): number | undefined {
  const v = o.maxTagLength;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`${at}.maxTagLength`, 'expected a non-negative integer');
  return v;
}

function provider(p: Record<string, unknown>, i: number, bad: Bad): TelemetryProvider {
  const name = String(p.name);
  const at = `extensionProviders[${i}]`;
  if (isObj(p.opentelemetry)) {
    const o = p.opentelemetry;
    const sp = serviceAndPort(o, `${at}.opentelemetry`, bad);
    let http: TracingHttpSettings | undefined;
    if (o.http !== undefined) {
      if (!isObj(o.http)) throw bad(`${at}.opentelemetry.http`, 'expected a mapping');
      const h = o.http;
      const headers = (Array.isArray(h.headers) ? h.headers : []).map((x: unknown, j: number) => {
        if (!isObj(x) || typeof x.name !== 'string') throw bad(`${at}.opentelemetry.http.headers[${j}].name`, 'is required');
        return { name: x.name, value: typeof x.value === 'string' ? x.value : '' };
      });
      const path = h.path === undefined ? '/v1/traces' : String(h.path);
      http = { path: path.startsWith('/') ? path : `/${path}`, timeoutMs: durationMs(h.timeout, `${at}.opentelemetry.http.timeout`, bad) ?? 5000, headers };
    }
    return { kind: 'opentelemetry', name, ...sp, http, maxTagLength: maxTagLength(o, `${at}.opentelemetry`, bad) };
  }
  if (isObj(p.zipkin)) return { kind: 'zipkin', name, ...serviceAndPort(p.zipkin, `${at}.zipkin`, bad), maxTagLength: maxTagLength(p.zipkin, `${at}.zipkin`, bad) };
  if (isObj(p.envoyFileAccessLog)) {
    const o = p.envoyFileAccessLog;
    if (typeof o.path !== 'string' || o.path === '') throw bad(`${at}.envoyFileAccessLog.path`, 'a file path (or /dev/stdout) is required');
    const fmt = o.logFormat;
    if (fmt !== undefined && !isObj(fmt)) throw bad(`${at}.envoyFileAccessLog.logFormat`, 'expected a mapping with text or labels');
    let labels: Record<string, string> | undefined;
    if (isObj(fmt) && fmt.labels !== undefined) {
      if (!isObj(fmt.labels)) throw bad(`${at}.envoyFileAccessLog.logFormat.labels`, 'expected a mapping of field name to format string');
      labels = {};
      for (const [k, v] of Object.entries(fmt.labels)) labels[k] = String(v);
    }
    if (isObj(fmt) && fmt.text !== undefined && labels !== undefined) throw bad(`${at}.envoyFileAccessLog.logFormat`, 'text and labels are exclusive');
    return { kind: 'envoyFileAccessLog', name, path: o.path, text: isObj(fmt) && typeof fmt.text === 'string' ? fmt.text : undefined, labels };
  }
  if (p.prometheus !== undefined) return { kind: 'prometheus', name };
  const type = Object.keys(p).find((k) => k !== 'name') ?? '(none)';
  return { kind: 'other', name, type };
}

function names(v: unknown, field: string, bad: Bad): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(field, 'expected a list of provider names');
  return v as string[];
}

/** Reads the telemetry fields of a MeshConfig object (shape already checked by the caller). */
export function parseTelemetryProviders(mesh: Record<string, unknown>, bad: Bad): MeshTelemetry {
  const listed = Array.isArray(mesh.extensionProviders) ? (mesh.extensionProviders as Record<string, unknown>[]).map((p, i) => provider(p, i, bad)) : [];
  const providers = [...listed, ...BuiltIn.filter((b) => !listed.some((p) => p.name === b.name))];
  const dp = mesh.defaultProviders;
  if (dp !== undefined && !isObj(dp)) throw bad('defaultProviders', 'expected a mapping (tracing, accessLogging, metrics)');
  const defaults = {
    tracing: names(isObj(dp) ? dp.tracing : undefined, 'defaultProviders.tracing', bad),
    accessLogging: names(isObj(dp) ? dp.accessLogging : undefined, 'defaultProviders.accessLogging', bad),
    metrics: isObj(dp) && dp.metrics !== undefined ? names(dp.metrics, 'defaultProviders.metrics', bad) : ['prometheus'],
  };
  for (const [kind, list] of Object.entries(defaults)) {
    for (const n of list) if (!providers.some((p) => p.name === n)) throw bad(`defaultProviders.${kind}`, `no extension provider named '${n}'`);
  }
  const et = mesh.enableTracing;
  if (et !== undefined && typeof et !== 'boolean') throw bad('enableTracing', `expected true or false, got ${JSON.stringify(et)}`);
  const dc = mesh.defaultConfig;
  const tracing = isObj(dc) && isObj(dc.tracing) ? dc.tracing : undefined;
  const sampling = tracing?.sampling;
  if (sampling !== undefined && (typeof sampling !== 'number' || sampling < 0 || sampling > 100)) throw bad('defaultConfig.tracing.sampling', `expected a percentage 0..100, got ${JSON.stringify(sampling)}`);
  const alf = mesh.accessLogFile;
  if (alf !== undefined && typeof alf !== 'string') throw bad('accessLogFile', 'expected a path');
  const enc = mesh.accessLogEncoding ?? 'TEXT';
  if (enc !== 'TEXT' && enc !== 'JSON') throw bad('accessLogEncoding', `expected TEXT or JSON, got ${JSON.stringify(enc)}`);
  const fmt = mesh.accessLogFormat;
  if (fmt !== undefined && typeof fmt !== 'string') throw bad('accessLogFormat', 'expected a format string');
  return Object.freeze({
    providers: Object.freeze(providers),
    defaultProviders: Object.freeze(defaults),
    enableTracing: et ?? true,
    defaultSamplingPercent: (sampling as number | undefined) ?? 1,
    accessLogFile: alf === '' ? undefined : (alf as string | undefined),
    accessLogEncoding: enc,
    accessLogFormat: fmt === '' ? undefined : (fmt as string | undefined),
  });
}
