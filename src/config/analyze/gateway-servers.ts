/**
 * Istio Gateway servers against the gateway workloads that serve them. A Gateway's `selector`
 * picks gateway workloads in any namespace (Istio's default): Pods and pod templates of the input,
 * and the ingress gateway Trellis provides (`istio: ingressgateway` in the root namespace).
 * - SECRET_NOT_FOUND (error): a TLS server's `credentialName` names no Secret in the namespace of
 *   a workload that serves it (src/config/credentials.ts, the rule the control plane's SDS uses);
 *   SECRET_INVALID (error): the Secret has no certificate and key (`tls.crt`/`tls.key` or
 *   `cert`/`key`), they do not parse as PEM or do not belong together, or, for MUTUAL, there is no
 *   CA (`ca.crt`/`cacert`, or a `<name>-cacert` Secret). Gateways
 *   that select no workload are SELECTOR_NO_MATCH's (selectors.ts); their secrets are not judged.
 * - GATEWAY_CONFLICT (error, IST0145): two Gateways served by one workload declare servers on the
 *   same port whose hosts intersect, and not both are plain HTTP (plain HTTP servers of one port
 *   share one route table, where hosts merge; TLS and TCP servers each become a filter chain, and
 *   two with the same match make the listener invalid).
 * - GATEWAY_DUPLICATE_CERTIFICATE (warning, IST0138): a Gateway and another whose selector includes
 *   all of its labels (so every workload of the other serves both) use the same certificate:
 *   HTTP/2 clients reuse one connection for every host the certificate covers, and the second
 *   Gateway's hosts then answer 404.
 * - GATEWAY_PORT_NOT_EXPOSED (warning, IST0162): a server port is neither a port nor a targetPort
 *   of any Service in front of the gateway workloads. Only judged when the input has such a
 *   Service: Trellis's own ingress gateway listens on every port its Gateways declare.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { caBundle, caSecretName, certificateAndKey, certificateProblem, credentialSecret, secretStrings } from '../credentials.ts';
import { hostsIntersect, parseGatewayServerHost } from '../host.ts';
import type { AnalysisContext } from './context.ts';
import { selectorMatches, type WorkloadInfo } from './workloads.ts';
import { isObject, labelsOf, list, view, type GatewayServer as Server, type IstioGatewayView, type Labels } from '../views.ts';

interface GatewayInfo {
  readonly resource: Resource;
  readonly selector: Labels;
  readonly servers: readonly Server[];
  /** Complete workloads (built-in gateway included) its selector matches. */
  readonly workloads: readonly WorkloadInfo[];
}

/** Runs the Gateway server checks. */
export function checkGatewayServers(ctx: AnalysisContext): void {
  const gateways: GatewayInfo[] = ctx.of(ResourceTypes.IstioGateway).map((g) => {
    const spec = view<IstioGatewayView>(g);
    const selector = labelsOf(spec.selector);
    const servers = list(spec.servers).filter((s): s is Server => isObject(s));
    // An empty selector selects no gateway proxy in Trellis (control/snapshot/gateways.ts).
    const workloads = ctx.selectWorkloads(selector, undefined);
    return { resource: g, selector, servers, workloads };
  });
  for (const g of gateways) {
    checkSecrets(ctx, g);
    checkExposedPorts(ctx, g);
  }
  checkConflicts(ctx, gateways);
  checkDuplicateCertificates(ctx, gateways);
}

const NoSecretModes = new Set(['PASSTHROUGH', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL']);

function credentialsOf(server: Server, i: number): { name: string; path: string }[] {
  const tls = server.tls;
  // Read defensively: a loader gap may hand out a non-object here.
  if (typeof tls !== 'object' || tls === null || Array.isArray(tls) || NoSecretModes.has(tls.mode ?? '')) return [];
  const out: { name: string; path: string }[] = [];
  if (typeof tls.credentialName === 'string' && tls.credentialName !== '') out.push({ name: tls.credentialName, path: `spec.servers[${i}].tls.credentialName` });
  list(tls.credentialNames).forEach((n, k) => {
    if (typeof n === 'string' && n !== '') out.push({ name: n, path: `spec.servers[${i}].tls.credentialNames[${k}]` });
  });
  return out;
}

function checkSecrets(ctx: AnalysisContext, g: GatewayInfo): void {
  const namespaces = [...new Set(g.workloads.map((w) => w.namespace))].sort();
  if (namespaces.length === 0) return;
  g.servers.forEach((server, i) => {
    for (const cred of credentialsOf(server, i)) {
      const missing: string[] = [];
      for (const ns of namespaces) {
        const ref = credentialSecret(cred.name, ns);
        if (ref === undefined) continue; // another SDS provider: not a Kubernetes Secret
        const secret = ctx.find(ResourceTypes.Secret, ref.namespace, ref.name);
        if (secret === undefined) {
          missing.push(`${ref.namespace}/${ref.name}`);
          continue;
        }
        const data = secretStrings(secret);
        const ck = certificateAndKey(data);
        const bad = ck === undefined ? 'it holds no certificate and key (keys tls.crt and tls.key, or cert and key)' : certificateProblem(ck);
        if (bad !== undefined) {
          ctx.report(g.resource, 'error', 'SECRET_INVALID',
            `TLS credential '${cred.name}' of server ${i}: Secret ${ref.namespace}/${ref.name} cannot be served: ${bad}`, cred.path);
        } else if (server.tls?.mode === 'MUTUAL' && caBundle(data) === undefined
          && caBundle(secretOf(ctx, ref.namespace, caSecretName(ref.name))) === undefined) {
          ctx.report(g.resource, 'error', 'SECRET_INVALID',
            `TLS credential '${cred.name}' of MUTUAL server ${i}: neither Secret ${ref.namespace}/${ref.name} (key ca.crt or cacert) nor ${ref.namespace}/${caSecretName(ref.name)} holds the CA that client certificates are verified against`, cred.path);
        }
      }
      if (missing.length > 0) {
        ctx.report(g.resource, 'error', 'SECRET_NOT_FOUND',
          `TLS credential '${cred.name}' of server ${i}: no Secret ${missing.join(', ')}; the credential is read in the namespace of the gateway workload serving it (${workloadsText(g.workloads)}), not the Gateway's`, cred.path);
      }
    }
  });
}

function secretOf(ctx: AnalysisContext, namespace: string, name: string): Record<string, string> | undefined {
  const s = ctx.find(ResourceTypes.Secret, namespace, name);
  return s === undefined ? undefined : secretStrings(s);
}

function workloadsText(ws: readonly WorkloadInfo[]): string {
  const names = ws.slice(0, 3).map((w) => (w.kind === 'built-in' ? `Trellis's ingress gateway in ${w.namespace}` : `${w.kind} ${w.namespace}/${w.name}`));
  return names.join(', ') + (ws.length > 3 ? `, and ${ws.length - 3} more` : '');
}

function checkExposedPorts(ctx: AnalysisContext, g: GatewayInfo): void {
  if (g.workloads.length === 0) return;
  const exposed = new Set<number>();
  let fronted = false;
  for (const s of ctx.of(ResourceTypes.Service)) {
    const spec = view<{ selector?: Labels; ports?: readonly { port?: number; targetPort?: number | string; protocol?: string }[] }>(s);
    const sel = labelsOf(spec.selector);
    if (Object.keys(sel).length === 0) continue;
    if (!g.workloads.some((w) => w.namespace === s.metadata.namespace && selectorMatches(sel, w.labels))) continue;
    fronted = true;
    for (const p of list(spec.ports)) {
      if (p === null || typeof p !== 'object' || (p.protocol ?? 'TCP') !== 'TCP') continue;
      if (typeof p.port === 'number') exposed.add(p.port);
      if (typeof p.targetPort === 'number') exposed.add(p.targetPort);
    }
  }
  if (!fronted) return;
  g.servers.forEach((server, i) => {
    const n = server.port?.number;
    if (typeof n !== 'number' || exposed.has(n)) return;
    ctx.report(g.resource, 'warning', 'GATEWAY_PORT_NOT_EXPOSED',
      `server ${i} listens on port ${n}, which no Service in front of the gateway workloads (${workloadsText(g.workloads)}) exposes (TCP ports and targetPorts: ${[...exposed].sort((a, b) => a - b).join(', ') || 'none'})`, `spec.servers[${i}].port.number`);
  });
}

const PlainHttp = new Set(['HTTP', 'HTTP2', 'GRPC']);

function isPlainHttp(s: Server): boolean {
  const proto = (s.port?.protocol ?? '').toUpperCase();
  const tls = s.tls;
  return PlainHttp.has(proto) && (!isObject(tls) || tls.mode === undefined);
}

function serverHosts(s: Server): string[] {
  return list(s.hosts).filter((h): h is string => typeof h === 'string').map((h) => parseGatewayServerHost(h, '').host);
}

/**
 * True when some workload serves both Gateways; where the input shows no workload at all (only
 * Trellis's own gateway), two identical selectors are taken to pick the same workloads.
 */
function shareWorkload(ctx: AnalysisContext, a: GatewayInfo, b: GatewayInfo): boolean {
  if (a.workloads.some((w) => b.workloads.includes(w))) return true;
  const blind = !ctx.workloads.some((w) => w !== ctx.builtinGateway);
  return blind && Object.keys(a.selector).length > 0 && JSON.stringify(sorted(a.selector)) === JSON.stringify(sorted(b.selector));
}

function sorted(l: Labels): [string, string][] {
  return Object.entries(l).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

function checkConflicts(ctx: AnalysisContext, gateways: readonly GatewayInfo[]): void {
  for (const a of gateways) {
    a.servers.forEach((sa, i) => {
      const port = sa.port?.number;
      if (typeof port !== 'number') return;
      const others: string[] = [];
      for (const b of gateways) {
        if (b === a || !shareWorkload(ctx, a, b)) continue;
        const clash = b.servers.some((sb) => sb.port?.number === port && !(isPlainHttp(sa) && isPlainHttp(sb))
          && serverHosts(sa).some((ha) => serverHosts(sb).some((hb) => hostsIntersect(ha, hb))));
        if (clash) others.push(`${b.resource.metadata.namespace}/${b.resource.metadata.name}`);
      }
      if (others.length === 0) return;
      ctx.report(a.resource, 'error', 'GATEWAY_CONFLICT',
        `server ${i} (port ${port}, ${(sa.port?.protocol ?? '?').toUpperCase()}, hosts ${serverHosts(sa).join(', ')}) overlaps Gateway ${others.join(', ')} on the same gateway workload, port and hosts; only one of them can be served`,
        `spec.servers[${i}]`);
    });
  }
}

function sameCertificate(a: Server, b: Server): boolean {
  const ta = a.tls;
  const tb = b.tls;
  if (!isObject(ta) || !isObject(tb)) return false;
  if (ta.credentialName && tb.credentialName) return ta.credentialName === tb.credentialName;
  if (!ta.credentialName && !tb.credentialName && ta.serverCertificate && ta.serverCertificate === tb.serverCertificate) {
    return !!ta.privateKey && ta.privateKey === tb.privateKey;
  }
  return false;
}

function checkDuplicateCertificates(ctx: AnalysisContext, gateways: readonly GatewayInfo[]): void {
  for (const a of gateways) {
    const others: string[] = [];
    for (const b of gateways) {
      if (b === a || !selectorMatches(a.selector, b.selector) || !shareWorkload(ctx, a, b)) continue;
      if (a.servers.some((sa) => b.servers.some((sb) => sameCertificate(sa, sb)))) others.push(`${b.resource.metadata.namespace}/${b.resource.metadata.name}`);
    }
    if (others.length === 0) continue;
    ctx.report(a.resource, 'warning', 'GATEWAY_DUPLICATE_CERTIFICATE',
      `uses the same certificate as Gateway ${others.join(', ')} on the same gateway workloads; HTTP/2 clients reuse one connection for every host the certificate covers, so requests for the other Gateway's hosts can answer 404`,
      'metadata.name');
  }
}
