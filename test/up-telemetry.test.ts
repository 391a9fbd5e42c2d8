/**
 * Distributed tracing and access logs through the demo (`trellis up`: ingress gateway -> web-api -> recommendation ->
 * purchase-history, each service with its sidecar), exported to collectors written here: an
 * OTLP/HTTP receiver (JSON, what the OpenTelemetry JS exporter sends) and a Zipkin v2 receiver.
 * Providers come from MeshConfig `extensionProviders`; sampling and the provider from a mesh-wide
 * Telemetry resource the test rewrites. One request yields one trace of six spans (the gateway's,
 * and a SERVER and CLIENT span per service hop) with each span the child of the previous hop's; a
 * client that speaks only B3 (multi or single header) has its trace continued; 0% and 100%
 * sampling behave, and a caller's own decision is honoured. Access logs (Istio's JSON format, the
 * built-in `envoy` provider to each proxy's stdout, which `trellis up` keeps in the process's log)
 * match the requests field by field; workload Telemetry silences one workload and filters another
 * with a CEL expression.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessTools } from './support/skip.ts';
import { curl, demoCopy, eventually, logTails, readStateFile, trellis, StartTimeoutS } from './up-support.ts';
import type { RuntimeState } from '../src/runtime/state.ts';

/** A span as both receivers normalise it. */
interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: 'SERVER' | 'CLIENT';
  service: string;
  attributes: Record<string, string>;
  via: 'otlp' | 'zipkin';
}

/** A collector: OTLP/HTTP JSON on /v1/traces, Zipkin v2 JSON on /api/v2/spans. */
class Collector {
  readonly spans: Span[] = [];
  readonly paths: string[] = [];
  readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        if (req.url === '/v1/traces') this.#otlp(body as OtlpBody);
        else if (req.url === '/api/v2/spans') this.#zipkin(body as ZipkinSpan[]);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });

  #otlp(body: OtlpBody): void {
    for (const rs of body.resourceSpans ?? []) {
      const service = attrs(rs.resource?.attributes)['service.name'] ?? '';
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          // OTLP SpanKind: 2 SERVER, 3 CLIENT.
          this.spans.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, kind: s.kind === 2 ? 'SERVER' : 'CLIENT', service, attributes: attrs(s.attributes), via: 'otlp' });
        }
      }
    }
  }

  #zipkin(body: ZipkinSpan[]): void {
    for (const s of body) this.spans.push({ traceId: s.traceId, spanId: s.id, parentSpanId: s.parentId, name: s.name, kind: s.kind, service: s.localEndpoint?.serviceName ?? '', attributes: s.tags ?? {}, via: 'zipkin' });
  }

  trace(id: string): Span[] {
    return this.spans.filter((s) => s.traceId === id);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
}

interface OtlpBody { resourceSpans?: { resource?: { attributes?: OtlpAttr[] }; scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttr[] }[] }[] }[] }
interface OtlpAttr { key: string; value: { stringValue?: string; intValue?: number; boolValue?: boolean } }
interface ZipkinSpan { traceId: string; id: string; parentId?: string; name: string; kind: 'SERVER' | 'CLIENT'; localEndpoint?: { serviceName?: string }; tags?: Record<string, string> }

function attrs(list: OtlpAttr[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list ?? []) out[a.key] = String(a.value.stringValue ?? a.value.intValue ?? a.value.boolValue ?? '');
  return out;
}

/** Orders a trace's spans root first, each the child of the one before; fails on anything else. */
function chain(spans: Span[]): Span[] {
  const roots = spans.filter((s) => !spans.some((p) => p.spanId === s.parentSpanId));
  assert.equal(roots.length, 1, `one root span, got ${JSON.stringify(roots.map((s) => [s.service, s.kind, s.parentSpanId]))}`);
  const out = [roots[0]];
  for (;;) {
    const kids = spans.filter((s) => s.parentSpanId === out.at(-1)!.spanId);
    if (kids.length === 0) break;
    assert.equal(kids.length, 1, 'a linear chain of hops');
    out.push(kids[0]);
  }
  assert.equal(out.length, spans.length, 'every span is on the chain');
  return out;
}

const skip = skipUnlessTools('curl');

describe('tracing and access logs through the demo: W3C and B3 propagation, OTLP/HTTP and Zipkin export, sampling, JSON logs', { skip, timeout: 900_000 }, () => {
  const collector = new Collector();
  let work = '';
  let config = '';
  let stateDir = '';
  let state: RuntimeState;
  let gateway = '';

  const telemetry = (sampling: number, provider = 'otel') => writeFileSync(join(config, 'telemetry.yaml'), [
    'apiVersion: telemetry.istio.io/v1', 'kind: Telemetry', 'metadata: {name: mesh-default, namespace: istio-system}',
    `spec: {tracing: [{providers: [{name: ${provider}}], randomSamplingPercentage: ${sampling}}], accessLogging: [{providers: [{name: envoy}]}]}`, '',
  ].join('\n'));

  /** Every proxy of the demo serves this sampling percentage and provider. */
  const applied = (sampling: number, tracer: string) => eventually(60_000, async () => {
    for (const p of state.processes.filter((x) => x.role === 'sidecar' || x.role === 'gateway')) {
      const body = (await curl(`http://127.0.0.1:${p.ports.admin}/config_dump`)).body.replace(/\s+/g, '');
      // proto3 JSON leaves a zero out: 0% is an empty Percent.
      if (!body.includes(sampling === 0 ? '"random_sampling":{}' : `"random_sampling":{"value":${sampling}}`) || !body.includes(tracer)) return false;
    }
    return true;
  });

  const flushed = () => new Promise((r) => setTimeout(r, 2500)); // sinks flush every second

  /**
   * Requests through connections opened before a listener update keep the old config until they
   * drain (Envoy's listener drain: `connection: close` on their next response); sends requests
   * until one shows the new behaviour, so the measurement starts on drained connections.
   */
  let warmups = 0;
  const settled = async (newBehaviour: (requestId: string) => Promise<boolean>) => {
    for (let i = 0; i < 20; i++) {
      const tag = `warmup-${warmups++}`;
      assert.equal((await curl(`${gateway}?rid=${tag}`)).status, 200);
      if (await newBehaviour(await gatewayRequestId(`/?rid=${tag}`))) return true;
    }
    return false;
  };
  /**
   * The gateway is the mesh's edge and, as Envoy 1.40 and Istio do (no internal_address_config:
   * no client address is internal; preserve_external_request_id off), it gives every request a
   * new x-request-id, which the mesh then carries. Requests are told apart by their path, and
   * found by the id the gateway gave them: the request_id of its access-log line.
   */
  const gatewayRequestId = async (path: string): Promise<string> => {
    let id: string | undefined;
    const found = await eventually(10_000, async () => {
      const g = state.processes.find((x) => x.role === 'gateway')!;
      for (const line of readFileSync(g.log, 'utf8').split('\n')) {
        if (!line.startsWith('{"start_time"')) continue;
        const o = JSON.parse(line) as { path?: string; request_id?: string };
        if (o.path === path && typeof o.request_id === 'string') id = o.request_id;
      }
      return id !== undefined;
    });
    assert.ok(found && id !== undefined, `the gateway logged ${path}`);
    return id;
  };
  const spansOf = (requestId: string) => collector.spans.filter((s) => s.attributes['guid:x-request-id'] === requestId).length;

  before(async () => {
    await new Promise<void>((r) => collector.server.listen(0, '127.0.0.1', r));
    work = mkdtempSync(join(tmpdir(), 'trellis-tracing-'));
    config = demoCopy();
    stateDir = join(work, 'state');
    const mesh = join(work, 'mesh.yaml');
    writeFileSync(mesh, [
      'defaultConfig: {tracing: {sampling: 100}}',
      'accessLogEncoding: JSON',
      'extensionProviders:',
      `- {name: otel, opentelemetry: {service: 127.0.0.1, port: ${collector.port}, http: {path: /v1/traces, timeout: 5s}}}`,
      `- {name: zipkin, zipkin: {service: 127.0.0.1, port: ${collector.port}}}`,
      '',
    ].join('\n'));
    telemetry(100);
    const r = await trellis(['up', '--detach', '--config', config, '--mesh-config', mesh, '--state-dir', stateDir, '--gateway-port', '0', '--start-timeout', String(StartTimeoutS)], { cwd: work, timeoutMs: 600_000 });
    assert.equal(r.code, 0, `up failed: ${r.stderr}\n${r.stdout}\n${logTails(stateDir)}`);
    state = readStateFile(stateDir);
    gateway = state.gatewayUrl!;
    assert.ok(await eventually(120_000, async () => (await curl(gateway)).status === 200), 'the demo answers through the gateway');
    assert.ok(await applied(100, 'envoy.tracers.opentelemetry'), 'tracing config reached every proxy');
  });

  after(async () => {
    if (stateDir) await trellis(['down', '--state-dir', stateDir]);
    collector.server.close();
    rmSync(work, { recursive: true, force: true });
    rmSync(config, { recursive: true, force: true });
  });

  test('one request: one trace across the gateway and three services, parent/child links per hop', async (t) => {
    const r = await curl(`${gateway}?rid=trace-e2e-1`, { 'x-request-id': 'trace-e2e-1' });
    assert.equal(r.status, 200, r.body);
    const requestId = await gatewayRequestId('/?rid=trace-e2e-1');
    assert.notEqual(requestId, 'trace-e2e-1', "the edge replaced the client's x-request-id, as Envoy 1.40 does");
    let trace: Span[] = [];
    assert.ok(await eventually(20_000, async () => {
      const root = collector.spans.find((s) => s.attributes['guid:x-request-id'] === requestId && s.service.startsWith('istio-ingressgateway'));
      trace = root === undefined ? [] : collector.trace(root.traceId);
      return trace.length >= 6;
    }), `six spans for the request; got ${JSON.stringify(collector.spans.map((s) => [s.service, s.kind, s.attributes['guid:x-request-id']]))}`);
    await flushed();
    trace = collector.trace(trace[0].traceId);
    const hops = chain(trace).map((s) => `${s.service} ${s.kind}`);
    t.diagnostic(`trace ${trace[0].traceId}: ${hops.join(' -> ')}`);
    assert.deepEqual(hops, [
      'istio-ingressgateway.istio-system CLIENT',
      'web-api.default SERVER', 'web-api.default CLIENT',
      'recommendation.default SERVER', 'recommendation.default CLIENT',
      'purchase-history.default SERVER',
    ]);
    // Istio's span tags on every hop; one request id across the mesh, the one the edge gave it.
    for (const s of trace) {
      assert.equal(s.attributes['guid:x-request-id'], requestId);
      assert.equal(s.attributes['http.status_code'], '200');
      assert.equal(s.attributes.component, 'proxy');
      assert.equal(s.attributes['http.method'], 'GET');
      assert.ok(s.attributes.node_id, 'node_id');
      assert.ok(s.attributes['istio.canonical_service'], 'istio.canonical_service');
      assert.equal(s.attributes['istio.mesh_id'], 'cluster.local');
    }
    const recClient = trace.find((s) => s.service === 'recommendation.default' && s.kind === 'CLIENT')!;
    assert.match(recClient.attributes.upstream_cluster, /^outbound\|\d+\|\|purchase-history\.default\.svc\.cluster\.local$/);
    assert.match(recClient.name, /purchase-history\.default\.svc\.cluster\.local:\d+\/\*/, 'span name from the route decorator, as Istio');
    assert.ok(collector.paths.some((p) => p.startsWith('POST /v1/traces application/json')), 'OTLP/HTTP JSON');
  });

  test('B3-only clients: multi-header and single-header contexts are continued', async () => {
    const multi = { trace: 'a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5', span: '1122334455667788' };
    assert.equal((await curl(gateway, { 'x-b3-traceid': multi.trace, 'x-b3-spanid': multi.span, 'x-b3-sampled': '1' })).status, 200);
    const single = { trace: 'f1e2d3c4b5a69788f1e2d3c4b5a69788', span: '8877665544332211' };
    assert.equal((await curl(gateway, { b3: `${single.trace}-${single.span}-1` })).status, 200);
    assert.ok(await eventually(20_000, async () => collector.trace(multi.trace).length >= 6 && collector.trace(single.trace).length >= 6), 'both traces arrive');
    await flushed();
    for (const c of [multi, single]) {
      const spans = collector.trace(c.trace);
      assert.equal(spans.length, 6);
      const root = spans.find((s) => s.service.startsWith('istio-ingressgateway'))!;
      assert.equal(root.parentSpanId, c.span, 'the gateway span is the child of the client\'s span');
      assert.equal(chain(spans.filter((s) => s !== root)).length, 5);
    }
  });

  test('sampling: 0% sends no span, 100% traces every request, a caller\'s decision wins', async (t) => {
    telemetry(0);
    assert.ok(await applied(0, 'envoy.tracers.opentelemetry'), '0% reached every proxy');
    assert.ok(await settled(async (id) => {
      await flushed();
      return spansOf(id) === 0;
    }), 'a request sends no span once connections drained');
    await flushed();
    const before0 = collector.spans.length;
    const N = 10;
    for (let i = 0; i < N; i++) assert.equal((await curl(gateway)).status, 200);
    await flushed();
    await flushed();
    assert.equal(collector.spans.length - before0, 0, 'no spans at 0%');
    // A caller that sampled its trace is honoured even at 0% (Envoy's parent-based decision).
    const forced = 'c0ffeec0ffeec0ffeec0ffeec0ffee00';
    assert.equal((await curl(gateway, { traceparent: `00-${forced}-0102030405060708-01` })).status, 200);
    assert.ok(await eventually(20_000, async () => collector.trace(forced).length >= 6), 'the caller\'s sampled trace is recorded');

    telemetry(100);
    assert.ok(await applied(100, 'envoy.tracers.opentelemetry'), '100% reached every proxy');
    assert.ok(await settled(async (id) => eventually(5000, async () => spansOf(id) === 6)), 'a request is traced at every hop once connections drained');
    await flushed();
    const before100 = new Set(collector.spans.map((s) => s.traceId));
    for (let i = 0; i < N; i++) assert.equal((await curl(gateway)).status, 200);
    // ... and a caller's "not sampled" is honoured at 100%.
    const unsampled = 'deadbeefdeadbeefdeadbeefdeadbeef';
    assert.equal((await curl(gateway, { traceparent: `00-${unsampled}-0102030405060708-00` })).status, 200);
    let fresh: string[] = [];
    assert.ok(await eventually(20_000, async () => {
      fresh = [...new Set(collector.spans.map((s) => s.traceId))].filter((id) => !before100.has(id));
      return fresh.length >= N && fresh.every((id) => collector.trace(id).length === 6);
    }), `10 complete traces at 100%, got ${fresh.length}`);
    await flushed();
    fresh = [...new Set(collector.spans.map((s) => s.traceId))].filter((id) => !before100.has(id));
    t.diagnostic(`100%: ${fresh.length} new traces of ${fresh.map((id) => collector.trace(id).length).join('/')} spans`);
    assert.equal(fresh.length, N, 'exactly one trace per request');
    assert.equal(collector.trace(unsampled).length, 0, 'a caller\'s unsampled trace sends nothing');
  });

  /** The JSON access-log lines of a process's log (its stdout), by request id. */
  const logLines = (role: string, workload: string | undefined, requestId: string): Record<string, unknown>[] => {
    const p = state.processes.find((x) => x.role === role && (workload === undefined || x.workload === workload))!;
    const out: Record<string, unknown>[] = [];
    for (const line of readFileSync(p.log, 'utf8').split('\n')) {
      if (!line.startsWith('{"start_time"')) continue;
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.request_id === requestId) out.push(o);
    }
    return out;
  };

  test('access logs: one JSON line per request per proxy, Envoy\'s fields matching the request', async (t) => {
    const t0 = Date.now();
    const r = await curl(`${gateway}?item=42`, { 'user-agent': 'trellis-e2e/1.0' });
    assert.equal(r.status, 200);
    const requestId = await gatewayRequestId('/?item=42');
    assert.ok(await eventually(10_000, async () => logLines('gateway', undefined, requestId).length === 1 && logLines('sidecar', 'web-api-v1', requestId).length === 2), 'lines written');
    const [g] = logLines('gateway', undefined, requestId);
    t.diagnostic(`gateway line: ${JSON.stringify(g)}`);
    assert.equal(g.method, 'GET');
    assert.equal(g.path, '/?item=42');
    assert.equal(g.protocol, 'HTTP/1.1');
    assert.equal(g.response_code, 200);
    assert.equal(g.response_flags, '-');
    assert.equal(g.response_code_details, 'via_upstream');
    assert.equal(g.bytes_received, 0);
    assert.equal(g.bytes_sent, Buffer.byteLength(r.body), 'the body curl received');
    assert.equal(typeof g.duration, 'number');
    assert.ok((g.duration as number) >= 0 && (g.duration as number) <= r.ms + 50, `duration ${g.duration} within curl's ${r.ms} ms`);
    const start = Date.parse(String(g.start_time));
    assert.ok(start >= t0 - 1000 && start <= Date.now(), `start_time ${g.start_time}`);
    assert.equal(g.user_agent, 'trellis-e2e/1.0');
    assert.equal(g.authority, new URL(gateway).host);
    assert.equal(g.upstream_cluster, 'outbound|8080||web-api.default.svc.cluster.local');
    assert.match(String(g.upstream_host), /^127\.0\.0\.1:\d+$/);
    assert.match(String(g.trace_id), /^[0-9a-f]{32}$/);
    const traced = collector.trace(String(g.trace_id));
    assert.ok(await eventually(10_000, async () => collector.trace(String(g.trace_id)).length >= 6) || traced.length >= 6, 'the logged trace id is the request\'s trace');
    assert.equal(g.downstream_peer_principal, null, 'a plaintext client has no principal');
    // web-api's sidecar: the inbound line (from the gateway, over mTLS) and the outbound one.
    const web = logLines('sidecar', 'web-api-v1', requestId);
    const inbound = web.find((l) => String(l.upstream_cluster).startsWith('inbound|'))!;
    const outbound = web.find((l) => String(l.upstream_cluster).startsWith('outbound|'))!;
    assert.ok(inbound && outbound, JSON.stringify(web));
    assert.equal(inbound.downstream_peer_principal, 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account');
    assert.equal(inbound.trace_id, g.trace_id);
    assert.equal(outbound.upstream_cluster, 'outbound|8080|v1|recommendation.default.svc.cluster.local', 'routing.yaml sends everything to subset v1');
    assert.equal(outbound.path, '/');
    assert.match(String(outbound.upstream_peer_principal), /^spiffe:\/\/cluster\.local\/ns\/default\/sa\/[a-z0-9-]+$/, 'the upstream\'s verified identity (mTLS)');
    assert.equal(outbound.response_code, 200);
  });

  test('Telemetry: access logs off for one workload only; a CEL filter keeps only errors on another', async () => {
    writeFileSync(join(config, 'telemetry-workloads.yaml'), [
      'apiVersion: telemetry.istio.io/v1', 'kind: Telemetry', 'metadata: {name: quiet-purchase-history, namespace: default}',
      'spec: {selector: {matchLabels: {app: purchase-history}}, accessLogging: [{disabled: true}]}', '---',
      'apiVersion: telemetry.istio.io/v1', 'kind: Telemetry', 'metadata: {name: errors-only-recommendation, namespace: default}',
      'spec: {selector: {matchLabels: {app: recommendation}}, accessLogging: [{filter: {expression: "response.code >= 400"}}]}', '',
    ].join('\n'));
    const dump = async (workload: string) => (await curl(`http://127.0.0.1:${state.processes.find((x) => x.workload === workload && x.role === 'sidecar')!.ports.admin}/config_dump`)).body;
    assert.ok(await eventually(60_000, async () => !(await dump('purchase-history-v1')).includes('envoy.access_loggers.file')), 'purchase-history has no access log');
    assert.ok(await eventually(60_000, async () => (await dump('recommendation-v1')).includes('response.code >= 400')), 'recommendation has the filter');
    assert.ok(await settled(async (id) => {
      await new Promise((r) => setTimeout(r, 300));
      return logLines('sidecar', 'web-api-v1', id).length === 2 && logLines('sidecar', 'purchase-history-v1', id).length === 0 && logLines('sidecar', 'recommendation-v1', id).length === 0;
    }), 'old connections drained');
    assert.equal((await curl(`${gateway}?rid=log-e2e-ok`)).status, 200);
    assert.equal((await curl(`${gateway}?rid=log-e2e-err`, { 'x-demo-fail': 'recommendation' })).status, 502);
    const ok = await gatewayRequestId('/?rid=log-e2e-ok');
    const err = await gatewayRequestId('/?rid=log-e2e-err');
    assert.ok(await eventually(10_000, async () => logLines('sidecar', 'web-api-v1', err).length === 2 && logLines('sidecar', 'recommendation-v1', err).length >= 1), 'error lines written');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(logLines('gateway', undefined, ok).length, 1, 'the gateway still logs');
    assert.equal(logLines('sidecar', 'web-api-v1', ok).length, 2, 'web-api still logs');
    assert.equal(logLines('sidecar', 'purchase-history-v1', ok).length, 0, 'purchase-history is silent');
    assert.equal(logLines('sidecar', 'recommendation-v1', ok).length, 0, 'recommendation drops a 200');
    const rec = logLines('sidecar', 'recommendation-v1', err);
    assert.ok(rec.length >= 1 && rec.every((l) => (l.response_code as number) >= 400), JSON.stringify(rec));
  });

  test('Zipkin provider: the same trace as Zipkin v2 JSON', async () => {
    telemetry(100, 'zipkin');
    assert.ok(await applied(100, 'envoy.tracers.zipkin'), 'zipkin reached every proxy');
    assert.ok(await settled(async (id) => eventually(5000, async () => collector.spans.filter((s) => s.attributes['guid:x-request-id'] === id && s.via === 'zipkin').length === 6)), 'spans go to Zipkin once connections drained');
    const before = collector.paths.filter((p) => p.startsWith('POST /api/v2/spans')).length;
    const id = '0123456789abcdef0123456789abcdef';
    assert.equal((await curl(gateway, { traceparent: `00-${id}-0102030405060708-01` })).status, 200);
    assert.ok(await eventually(20_000, async () => collector.trace(id).length >= 6), 'six spans through Zipkin');
    assert.ok(collector.paths.filter((p) => p.startsWith('POST /api/v2/spans')).length > before, 'POSTed to /api/v2/spans');
    await flushed();
    assert.ok(collector.trace(id).every((s) => s.via === 'zipkin'));
    const hops = chain(collector.trace(id)).map((s) => `${s.service} ${s.kind}`);
    assert.deepEqual(hops.slice(0, 3), ['istio-ingressgateway.istio-system CLIENT', 'web-api.default SERVER', 'web-api.default CLIENT']);
  });
});
