/**
 * Runs case files against a started Environment: applies each case's manifests (and setup /
 * before actions), evaluates status checks, sends every request case with upstream's retry rule,
 * checks mirrors, weight distributions and percentage mirrors, and returns one result per case
 * file. Case files run one after another (their manifests conflict: most attach routes for `/`
 * to the same Gateway); the request cases inside a file run in parallel (at most 8), except in
 * files with `before` actions, which run in order as the README requires.
 */
import { randomUUID } from 'node:crypto';
import type { CaseFile, CaseRequest, Corpus, Expectation, K8sObject, RequestCase } from './corpus.ts';
import { GatewayClassName, objectsOf } from './corpus.ts';
import { Environment, type Capture } from './environment.ts';
import { sendGrpc, sendHttp, type Reply } from './clients.ts';
import { checkGrpcReply, checkHttpReply, checkMeshResponse, prepare, untilConsistent, type PreparedRequest } from './checker.ts';
import { parseClientOutput, runClient } from './mesh-client.ts';
import { evaluateStatusChecks, gatewayClassObject } from './status-checks.ts';
import { deploymentOfPod, parseSelector, selects } from './workloads.ts';

export type Outcome = 'passed' | 'failed' | 'skipped';

/** Why a case was skipped, as a stable id (the suite turns it into a test/support/skip.ts reason). */
export type SkipKind = 'needs-transparent-capture' | 'unevaluated-status' | 'nothing-to-check';

export interface CaseResult {
  name: string;
  profile: string;
  outcome: Outcome;
  reasons: string[];
  ms: number;
  /** Set when `outcome` is skipped. */
  skipKind?: SkipKind;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Why the runner cannot run a case at all, or undefined. Pod IPs and routing by Service IP need
 * the mesh profile's transparent capture; `explicitWhy` says why it is not in use.
 */
export function skipReason(c: CaseFile, capture: Capture = 'explicit', explicitWhy = 'explicit capture'): string | undefined {
  if (c.profile !== 'mesh' || capture === 'transparent') return undefined;
  const reqs = c.cases.map((rc) => rc.request);
  if (reqs.some((r) => JSON.stringify(r).includes('-pod-ip}'))) return `needs pod IPs (transparent capture), not available: ${explicitWhy}`;
  if ((c.features ?? []).includes('SupportMeshClusterIPMatching')) return `needs routing by Service IP (transparent capture), not available: ${explicitWhy}`;
  return undefined;
}

/** All case objects of a case file (manifests, then setup patches applied). */
export function caseObjects(corpus: Corpus, c: CaseFile, podPorts: (ns: string, deployment: string) => number[]): K8sObject[] {
  let objs = (c.manifests ?? []).flatMap((m) => objectsOf(corpus.manifestText(m)));
  for (const s of c.setup ?? []) {
    if (s.action !== 'patchEndpointSlices') continue;
    const names = (s.names as string[] | undefined) ?? [];
    const m = /Deployment (\S+)/.exec(String(s.endpoints ?? ''));
    const deployment = m?.[1] ?? 'infra-backend-v1';
    const ports = podPorts(String(s.namespace), deployment);
    const next: K8sObject[] = [];
    for (const o of objs) {
      if (o.kind !== 'EndpointSlice' || !names.includes(o.metadata?.name ?? '') || o.addressType !== 'IPv4' || ports.length === 0) {
        next.push(o);
        continue;
      }
      // Our pods share 127.0.0.1 and differ by port, so each pod gets its own copy of the slice.
      ports.forEach((port, i) => {
        const slicePorts = ((o.ports as { name?: string; port?: number }[] | undefined) ?? []).map((p) => ({ ...p, port }));
        next.push({
          ...o,
          metadata: { ...o.metadata, name: `${o.metadata?.name}-${i}` },
          endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true, serving: true, terminating: false } }],
          ports: slicePorts,
        });
      });
    }
    objs = next;
  }
  return objs;
}

/** Gateways a case sends traffic to (`ns/name`). */
export function gatewaysOf(c: CaseFile): string[] {
  const out = new Set<string>();
  if (c.gateway) out.add(`${c.gateway.namespace}/${c.gateway.name}`);
  for (const rc of c.cases) if (rc.gateway) out.add(`${rc.gateway.namespace}/${rc.gateway.name}`);
  for (const k of Object.keys(c.routesByGateway ?? {})) out.add(k);
  return [...out];
}

/** Runs case files in order against `env`. */
export class CaseRunner {
  readonly env: Environment;
  readonly corpus: Corpus;
  readonly base: K8sObject[];
  readonly log: (msg: string) => void;
  /** Why the mesh profile runs with explicit capture (skip reasons quote it). */
  readonly explicitWhy: string;

  constructor(env: Environment, corpus: Corpus, base: K8sObject[], log: (msg: string) => void, explicitWhy = 'explicit capture') {
    this.env = env;
    this.explicitWhy = explicitWhy;
    this.corpus = corpus;
    this.base = base;
    this.log = log;
  }

  podPorts = (ns: string, deployment: string): number[] =>
    this.env.pods.filter((p) => p.namespace === ns && p.deployment === deployment).map((p) => this.env.echoPorts.get(p.name)!).filter((p) => p !== undefined);

  async run(c: CaseFile): Promise<CaseResult> {
    const t0 = Date.now();
    const result = (outcome: Outcome, reasons: string[], skipKind?: SkipKind): CaseResult => ({ name: c.name, profile: c.profile, outcome, reasons, ms: Date.now() - t0, ...(skipKind ? { skipKind } : {}) });
    const skip = skipReason(c, this.env.capture, this.explicitWhy);
    if (skip !== undefined) return result('skipped', [skip], 'needs-transparent-capture');
    const reasons: string[] = [];
    let objects = caseObjects(this.corpus, c, this.podPorts);
    const gateways = gatewaysOf(c);
    const clients = this.clientPods(c);
    const unconfirmed = await this.env.apply(objects, gateways, clients);
    if (unconfirmed.length > 0) this.log(`${c.name}: config not confirmed on ${unconfirmed.join(', ')} (marker missing); continuing`);

    // The GatewayClass the upstream suite creates for the implementation, then what was written.
    const statusObjects = [gatewayClassObject(GatewayClassName), ...this.base, ...objects.filter((o) => !Environment.isMarker(o))];
    const status = evaluateStatusChecks(statusObjects, c.statusChecks ?? [], c.routeKind);
    reasons.push(...status.failures.map((f) => `status: ${f}`));
    const unsupported = status.unsupported;

    const sequential = c.cases.some((rc) => rc.before !== undefined);
    const caseReasons: string[] = new Array(c.cases.length);
    let next = 0;
    const worker = async () => {
      while (next < c.cases.length) {
        const i = next++;
        const rc = c.cases[i];
        if (rc.before !== undefined) {
          for (const b of rc.before) {
            if (b.action !== 'delete') continue;
            objects = objects.filter((o) => !(o.kind === b.kind && o.metadata?.namespace === b.namespace && o.metadata?.name === b.name));
          }
          await this.env.apply(objects, gateways, clients);
        }
        // With percentage mirroring a single request need not be mirrored: the distribution step checks it.
        const err = await this.runRequestCase(c, c.mirrorDistribution !== undefined ? { ...rc, expect: { ...rc.expect, mirroredTo: undefined } } : rc);
        if (err !== undefined) caseReasons[i] = `case ${i} ${rc.name ? `"${rc.name}" ` : ''}${describeRequest(rc.request)}: ${err}`;
      }
    };
    await Promise.all(Array.from({ length: sequential ? 1 : Math.min(8, c.cases.length) }, worker));
    reasons.push(...caseReasons.filter((x) => x !== undefined));

    if (reasons.length === 0 && c.websocket !== undefined) {
      const ws = await untilConsistent(() => this.websocketAttempt(c));
      if (ws !== undefined) reasons.push(`websocket: ${ws}`);
    }
    if (reasons.length === 0 && c.weights !== undefined) {
      const w = await this.runWeights(c);
      if (w !== undefined) reasons.push(`weights: ${w}`);
    }
    if (reasons.length === 0 && c.mirrorDistribution !== undefined) {
      const m = await this.runMirrorDistribution(c, objects);
      if (m !== undefined) reasons.push(`mirrorDistribution: ${m}`);
    }
    if (reasons.length > 0) return result('failed', reasons);
    if (unsupported.length > 0) return result('skipped', unsupported.map((u) => `status check not evaluated: ${u}`), 'unevaluated-status');
    if (c.cases.length === 0 && (c.statusChecks ?? []).length === 0 && c.weights === undefined && c.websocket === undefined) return result('skipped', ['nothing to check (no cases, no status checks)'], 'nothing-to-check');
    return result('passed', []);
  }

  /** The local port and default Host for a request case's Gateway listener. */
  gatewayTarget(c: CaseFile, rc: RequestCase): { port: number; address: string } | string {
    const ref = rc.gateway ?? c.gateway;
    if (ref === undefined) return 'case names no gateway';
    const g = this.env.gateways.get(`${ref.namespace}/${ref.name}`);
    if (g === undefined) return `no gateway proxy for ${ref.namespace}/${ref.name}`;
    const l = (ref.listener ? g.listeners.find((x) => x.name === ref.listener) : undefined) ?? g.listeners[0];
    if (l === undefined) return `gateway ${ref.namespace}/${ref.name} has no listeners`;
    const port = g.ports[l.port];
    if (port === undefined) return `listener port ${l.port} of ${ref.namespace}/${ref.name} is not mapped`;
    // The Host a client would send to the Gateway's address: the listener port, not our local remap.
    return { port, address: `127.0.0.1${l.port === 80 ? '' : `:${l.port}`}` };
  }

  /**
   * One WebSocket exchange through the Gateway (upstream dials ws://<gateway>/ws and expects each
   * frame echoed). Node's WebSocket client cannot set Origin; the echo backend does not check it.
   */
  async websocketAttempt(c: CaseFile): Promise<string | undefined> {
    const t = this.gatewayTarget(c, { request: {}, expect: {} });
    if (typeof t === 'string') return t;
    const spec = c.websocket as { exchanges?: { sendText?: string; expectText?: string; sendBinary?: number[]; expectBinary?: number[] }[] };
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/ws`);
    ws.binaryType = 'arraybuffer';
    const inbox: (string | Uint8Array)[] = [];
    let waiter: (() => void) | undefined;
    ws.onmessage = (ev) => {
      inbox.push(typeof ev.data === 'string' ? ev.data : new Uint8Array(ev.data as ArrayBuffer));
      waiter?.();
    };
    const next = (ms: number) => new Promise<string | Uint8Array | undefined>((resolve) => {
      if (inbox.length > 0) return resolve(inbox.shift());
      const timer = setTimeout(() => resolve(undefined), ms);
      waiter = () => {
        clearTimeout(timer);
        waiter = undefined;
        resolve(inbox.shift());
      };
    });
    try {
      const opened = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => resolve('no WebSocket handshake within 10 s'), 10_000);
        ws.onopen = () => { clearTimeout(timer); resolve(undefined); };
        ws.onerror = () => { clearTimeout(timer); resolve('WebSocket handshake failed'); };
      });
      if (opened) return opened;
      for (const [i, x] of (spec.exchanges ?? []).entries()) {
        if (x.sendText !== undefined) ws.send(x.sendText);
        else if (x.sendBinary !== undefined) ws.send(new Uint8Array(x.sendBinary));
        const got = await next(10_000);
        if (got === undefined) return `exchange ${i}: no frame back within 10 s`;
        if (x.expectText !== undefined && got !== x.expectText) return `exchange ${i}: got ${JSON.stringify(got)}, want text ${JSON.stringify(x.expectText)}`;
        if (x.expectBinary !== undefined && (typeof got === 'string' || got.length !== x.expectBinary.length || got.some((b, j) => b !== x.expectBinary![j]))) {
          return `exchange ${i}: got ${typeof got === 'string' ? JSON.stringify(got) : `[${[...got]}]`}, want binary [${x.expectBinary}]`;
        }
      }
      return undefined;
    } finally {
      ws.close();
    }
  }

  /** Sends one attempt of a gateway-profile request case; returns the reply and what was sent. */
  async sendGateway(c: CaseFile, rc: RequestCase, requestId?: string): Promise<{ sent: PreparedRequest; reply: Reply } | string> {
    const t = this.gatewayTarget(c, rc);
    if (typeof t === 'string') return t;
    const req = rc.request;
    const sent = prepare(req, rc.expect, requestId);
    if (isGrpc(c, req)) {
      const reply = await sendGrpc({ port: t.port, service: req.service ?? '', method: req.method ?? 'Echo', authority: req.authority ?? t.address, metadata: req.metadata ?? {} });
      return { sent, reply };
    }
    const secure = req.scheme === 'https' || req.protocol === 'HTTPS' || req.protocol === 'H2';
    if (secure && this.env.tls === undefined) return 'HTTPS request but the runner has no certificate';
    const tls = secure ? { servername: req.sni, ca: this.env.tls!.cert } : undefined;
    const reply = await sendHttp({ port: t.port, method: sent.method, path: sent.path, host: sent.host ?? t.address, headers: sent.headers, h2c: req.protocol === 'H2C_PRIOR_KNOWLEDGE' || req.protocol === 'H2', tls });
    return { sent, reply };
  }

  async gatewayAttempt(c: CaseFile, rc: RequestCase): Promise<string | undefined> {
    const r = await this.sendGateway(c, rc);
    if (typeof r === 'string') return r;
    const err = isGrpc(c, rc.request) ? checkGrpcReply(rc.request, rc.expect, r.reply) : checkHttpReply(r.sent, rc.request, rc.expect, r.reply);
    if (err !== undefined) return err;
    for (const m of rc.expect.mirroredTo ?? []) {
      const since = Date.now() - 2000;
      const deadline = Date.now() + 10_000;
      let seen = false;
      while (!seen && Date.now() < deadline) {
        seen = this.env.echoLinesFor(m.namespace, m.name, since).some((l) => l.path === r.sent.path);
        if (!seen) await sleep(50);
      }
      if (!seen) return `no mirrored request ${r.sent.path} logged by ${m.namespace}/${m.name} within 10 s`;
    }
    return undefined;
  }

  /** Pods whose sidecars a mesh case sends from. */
  clientPods(c: CaseFile): string[] {
    return [c.client, ...c.cases.map((rc) => rc.client)].flatMap((ref) => {
      if (ref === undefined) return [];
      const s = this.clientSidecar(c, { request: {}, expect: {}, client: ref });
      return s ? [s.pod.name] : [];
    });
  }

  /** The sidecar of the first pod matching a mesh client selector. */
  clientSidecar(c: CaseFile, rc: RequestCase) {
    const ref = rc.client ?? c.client;
    if (ref === undefined) return undefined;
    const sel = parseSelector(ref.selector);
    return [...this.env.sidecars.values()].find((s) => s.pod.namespace === ref.namespace && selects(sel, s.pod.labels));
  }

  async meshAttempt(c: CaseFile, rc: RequestCase, count = 1): Promise<{ err?: string; hostnames: string[] }> {
    const sidecar = this.clientSidecar(c, rc);
    if (sidecar === undefined) return { err: 'no client pod matches the selector', hostnames: [] };
    const req = rc.request;
    const grpc = req.protocol === 'grpc';
    const sent = prepare(req, rc.expect);
    const ns = sidecar.pod.namespace;
    let missing: string | undefined;
    const host = (req.host ?? 'echo').replace(/\{([a-z0-9-]+)-pod-ip\}/g, (_, d: string) => this.env.podIp(ns, d) ?? (missing = `{${d}-pod-ip}`));
    if (missing !== undefined) return { err: `no pod IP for ${missing}`, hostnames: [] };
    const pod = this.env.podClient(sidecar.pod.name);
    const client = pod === undefined ? sidecar : {
      resolve: (h: string) => this.env.resolve(h, ns),
      http: pod.http.bind(pod),
      grpc: pod.grpc.bind(pod),
    };
    const url = `${grpc ? 'grpc' : 'http'}://${host}${grpc ? '' : sent.path}`;
    const headers = { ...(req.headers ?? {}) };
    let out: string;
    try {
      out = await runClient(client, { url, method: req.method, headers, count });
    } catch (err) {
      return { err: (err as Error).message, hostnames: [] };
    }
    const responses = parseClientOutput(out);
    if (responses.length !== count) return { err: `client printed ${responses.length} responses for --count=${count}`, hostnames: [] };
    for (const r of responses) {
      const e = checkMeshResponse(rc.expect, r, grpc);
      if (e !== undefined) return { err: e, hostnames: [] };
    }
    return { hostnames: responses.map((r) => r.Hostname) };
  }

  async runRequestCase(c: CaseFile, rc: RequestCase): Promise<string | undefined> {
    const attempt = c.profile === 'mesh' ? async () => (await this.meshAttempt(c, rc)).err : () => this.gatewayAttempt(c, rc);
    if (rc.repeat !== undefined) {
      for (let i = 0; i < rc.repeat; i++) {
        const err = await attempt();
        if (err !== undefined) return `repeat ${i + 1}/${rc.repeat}: ${err}`;
      }
      return undefined;
    }
    return untilConsistent(attempt);
  }

  async runWeights(c: CaseFile): Promise<string | undefined> {
    const w = c.weights!;
    const rc = c.cases[0];
    if (rc === undefined) return 'no request case to send';
    const total = w.totalRequests ?? 500;
    const tolerance = w.tolerance ?? 0.05;
    const expected = w.expected;
    const positive = Object.entries(expected).filter(([, v]) => v > 0).map(([k]) => k);
    let last = '';
    for (let attempt = 0; attempt < (w.maxAttempts ?? 10); attempt++) {
      const counts = new Map<string, number>();
      let err: string | undefined;
      if (c.profile === 'mesh') {
        const r = await this.meshAttempt(c, rc, total);
        err = r.err;
        for (const h of r.hostnames) counts.set(deploymentOfPod(h), (counts.get(deploymentOfPod(h)) ?? 0) + 1);
      } else {
        let next = 0;
        const worker = async () => {
          while (next < total && err === undefined) {
            next++;
            const jitter: RequestCase = Math.random() < 0.5 ? rc : { ...rc, request: { ...rc.request, headers: { ...(rc.request.headers ?? {}), 'X-Jitter': String(Math.floor(Math.random() * 10000)) } } };
            const r = await this.sendGateway(c, jitter);
            if (typeof r === 'string') {
              err = r;
              return;
            }
            const e = isGrpc(c, rc.request) ? checkGrpcReply(rc.request, rc.expect, r.reply) : checkHttpReply(r.sent, jitter.request, { ...rc.expect, request: rc.expect.request ?? { path: r.sent.path } }, r.reply);
            if (e !== undefined) {
              err = e;
              return;
            }
            const pod = r.reply.echo?.pod ?? '';
            counts.set(deploymentOfPod(pod), (counts.get(deploymentOfPod(pod)) ?? 0) + 1);
          }
        };
        await Promise.all(Array.from({ length: w.concurrency ?? 10 }, worker));
      }
      if (err !== undefined) return err;
      const unknown = [...counts.keys()].filter((k) => !(k in expected));
      const fractions = Object.fromEntries(Object.keys(expected).map((k) => [k, (counts.get(k) ?? 0) / total]));
      const off = Object.entries(expected).filter(([k, v]) => Math.abs(fractions[k] - v) > tolerance);
      const distinct = [...counts.keys()].filter((k) => k in expected).length;
      last = `observed ${JSON.stringify(fractions)}${unknown.length ? `, unknown backends ${unknown.join(', ')}` : ''}, expected ${JSON.stringify(expected)} ±${tolerance}`;
      if (unknown.length === 0 && distinct === positive.length && off.length === 0) return undefined;
    }
    return last;
  }

  async runMirrorDistribution(c: CaseFile, objects: readonly K8sObject[]): Promise<string | undefined> {
    const md = c.mirrorDistribution!;
    const total = Number(md.totalRequests ?? 500);
    for (const rc of c.cases) {
      const mirror = percentMirrorFor(objects, rc.request.path ?? '/');
      if (mirror === undefined) return `no percentage mirror rule for ${rc.request.path}`;
      const p = mirror.percent / 100;
      const sd = Math.sqrt(total * p * (1 - p));
      const lo = total * p - Number(md.toleranceStdDevs ?? 3) * sd;
      const hi = total * p + Number(md.toleranceStdDevs ?? 3) * sd;
      let last = '';
      let ok = false;
      for (let attempt = 0; attempt < Number(md.maxAttempts ?? 5) && !ok; attempt++) {
        const id = randomUUID();
        const since = Date.now();
        let err: string | undefined;
        let next = 0;
        let sentPath = '';
        const worker = async () => {
          while (next < total && err === undefined) {
            next++;
            const r = await this.sendGateway(c, rc, id);
            if (typeof r === 'string') {
              err = r;
              return;
            }
            sentPath = r.sent.path;
            err = checkHttpReply(r.sent, rc.request, rc.expect, r.reply);
          }
        };
        await Promise.all(Array.from({ length: Number(md.concurrency ?? 10) }, worker));
        if (err !== undefined) return `${rc.request.path}: ${err}`;
        await sleep(1000);
        const count = this.env.echoLinesFor(mirror.namespace, mirror.service, since).filter((l) => l.path === sentPath).length;
        last = `${rc.request.path}: ${count} of ${total} mirrored, want [${lo.toFixed(1)}, ${hi.toFixed(1)}] (${mirror.percent}%)`;
        ok = count >= lo && count <= hi;
      }
      if (!ok) return last;
    }
    return undefined;
  }
}

function isGrpc(c: CaseFile, req: CaseRequest): boolean {
  return c.routeKind === 'GRPCRoute' || req.service !== undefined || req.protocol === 'grpc';
}

function describeRequest(r: CaseRequest): string {
  const parts = [r.method ?? (r.service ? 'gRPC' : 'GET'), r.service ? `${r.service}/${r.method ?? ''}` : r.path ?? '/'];
  if (r.host) parts.push(`host=${r.host}`);
  if (r.headers && Object.keys(r.headers).length) parts.push(`headers=${JSON.stringify(r.headers)}`);
  if (r.metadata) parts.push(`metadata=${JSON.stringify(r.metadata)}`);
  return parts.join(' ');
}

/** The percentage (0-100) and target of the request mirror rule with the longest prefix matching `path`. */
export function percentMirrorFor(objects: readonly K8sObject[], path: string): { percent: number; namespace: string; service: string } | undefined {
  let best: { len: number; percent: number; namespace: string; service: string } | undefined;
  for (const o of objects) {
    if (o.kind !== 'HTTPRoute') continue;
    const rules = ((o.spec ?? {}) as { rules?: { matches?: { path?: { value?: string } }[]; filters?: { type?: string; requestMirror?: { backendRef?: { name?: string; namespace?: string }; percent?: number; fraction?: { numerator?: number; denominator?: number } } }[] }[] }).rules ?? [];
    for (const rule of rules) {
      const mf = (rule.filters ?? []).find((f) => f.type === 'RequestMirror' && f.requestMirror);
      if (!mf?.requestMirror) continue;
      const rm = mf.requestMirror;
      const percent = rm.percent ?? (rm.fraction ? (100 * (rm.fraction.numerator ?? 0)) / (rm.fraction.denominator ?? 100) : 100);
      for (const m of rule.matches ?? []) {
        const v = m.path?.value ?? '/';
        if (!path.startsWith(v) || (best && best.len >= v.length)) continue;
        best = { len: v.length, percent, namespace: rm.backendRef?.namespace ?? o.metadata?.namespace ?? '', service: rm.backendRef?.name ?? '' };
      }
    }
  }
  return best && { percent: best.percent, namespace: best.namespace, service: best.service };
}

export type { Expectation };
