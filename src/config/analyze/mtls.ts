/**
 * mTLS migration checks: the two ways a PeerAuthentication change breaks traffic, which no mesh
 * warns about before it happens.
 * - MTLS_CONFLICT (warning): a DestinationRule `tls` mode the destination's PeerAuthentication
 *   refuses: DISABLE (plaintext) towards STRICT workloads, SIMPLE or MUTUAL (TLS without the mesh
 *   certificate) towards STRICT workloads, ISTIO_MUTUAL towards workloads that DISABLE mTLS
 *   (istioctl's former IST0113, in both directions).
 * - MTLS_PLAINTEXT_CLIENTS (warning): a PeerAuthentication makes a workload port STRICT while the
 *   sidecar's own counters (`trellis mtls`, given as `observedPlaintext`) show clients that sent it
 *   plaintext in the last minutes: they will be refused. Only where observations are given.
 * The effective mode is Istio's: workload policy (selector) before namespace policy before the
 * mesh policy in the root namespace, port-level settings first, UNSET inheriting.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { selectorMatches } from './workloads.ts';
import { labelsOf, list, view, type DestinationRuleView, type Labels, type PeerAuthenticationView, type ServiceView, type TrafficPolicy } from '../views.ts';

/** Plaintext requests a sidecar saw on one inbound port (from its counters). */
export interface ObservedPlaintext {
  /** How the workload is named in the message (`default/web-api-v1 (web-api-v1-x7k2q)`). */
  readonly workload: string;
  readonly namespace: string;
  /** The workload's labels (complete, as the proxy reports them). */
  readonly labels: Labels;
  /** The workload port. */
  readonly port: number;
  readonly minutes: number;
  readonly clients: readonly { readonly client: string; readonly requests: number }[];
}

type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/**
 * The PeerAuthentication mode for workloads of `ns` with `labels` at `port`, most specific policy
 * first. For a Service, `labels` is its selector (a lower bound of its pods' labels): a workload
 * policy counts when its selector is implied by it, so it surely selects those pods.
 */
function peerMode(ctx: AnalysisContext, ns: string, labels: Labels, port: number): { mode: Mode; pa: Resource } | undefined {
  const all = ctx.of(ResourceTypes.PeerAuthentication);
  const selectorOf = (pa: Resource) => labelsOf(view<PeerAuthenticationView>(pa).selector?.matchLabels);
  const modeOf = (pa: Resource): Mode | undefined => {
    const spec = view<PeerAuthenticationView>(pa);
    const atPort = spec.portLevelMtls?.[String(port)]?.mode;
    const m = atPort !== undefined && atPort !== 'UNSET' ? atPort : spec.mtls?.mode;
    return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined;
  };
  const levels: Resource[][] = [
    all.filter((pa) => {
      const sel = selectorOf(pa);
      return pa.metadata.namespace === ns && Object.keys(sel).length > 0 && Object.keys(labels).length > 0 && selectorMatches(sel, labels);
    }),
    all.filter((pa) => pa.metadata.namespace === ns && Object.keys(selectorOf(pa)).length === 0),
    all.filter((pa) => pa.metadata.namespace === ctx.rootNamespace && Object.keys(selectorOf(pa)).length === 0),
  ];
  for (const level of levels) {
    for (const pa of level) {
      const m = modeOf(pa);
      if (m !== undefined) return { mode: m, pa };
    }
  }
  return undefined;
}

function tlsModeAt(tp: TrafficPolicy | undefined, port: number): string | undefined {
  if (tp === undefined || tp === null) return undefined;
  const pl = list(tp.portLevelSettings).find((p) => p?.port?.number === port);
  return pl?.tls?.mode ?? tp.tls?.mode;
}

/** Why a client TLS mode fails against a server mode, or undefined when they work together. */
function conflict(client: string, server: Mode): string | undefined {
  if (server === 'STRICT' && client === 'DISABLE') return 'clients send plaintext, which STRICT refuses';
  if (server === 'STRICT' && (client === 'SIMPLE' || client === 'MUTUAL')) return `clients use ${client} TLS without the mesh certificate, which STRICT refuses`;
  if (server === 'DISABLE' && client === 'ISTIO_MUTUAL') return 'clients send mTLS, but the workloads take only plaintext';
  return undefined;
}

function checkDestinationRuleModes(ctx: AnalysisContext): void {
  if (ctx.of(ResourceTypes.PeerAuthentication).length === 0) return;
  for (const { host, resource: dr } of ctx.destinationRules) {
    const svc = ctx.serviceFor(host);
    if (svc === undefined) continue;
    const sspec = view<ServiceView>(svc);
    const selector = labelsOf(sspec.selector);
    const spec = view<DestinationRuleView>(dr);
    const policies: [TrafficPolicy | undefined, string][] = [[spec.trafficPolicy, 'spec.trafficPolicy']];
    list(spec.subsets).forEach((s, i) => policies.push([s?.trafficPolicy, `spec.subsets[${i}].trafficPolicy`]));
    let reported = false;
    for (const p of list(sspec.ports)) {
      if (reported || typeof p?.port !== 'number') continue;
      const target = typeof p.targetPort === 'number' ? p.targetPort : p.port;
      for (const [tp, path] of policies) {
        // A subset without its own tls inherits the top-level policy, already checked.
        const mode = tlsModeAt(tp, p.port);
        if (mode === undefined) continue;
        const peer = peerMode(ctx, svc.metadata.namespace, selector, target);
        const why = peer === undefined ? undefined : conflict(mode, peer.mode);
        if (why === undefined || peer === undefined) continue;
        ctx.report(dr, 'warning', 'MTLS_CONFLICT',
          `tls mode ${mode} for ${host} port ${p.port}, but PeerAuthentication ${peer.pa.metadata.namespace}/${peer.pa.metadata.name} makes workload port ${target} ${peer.mode}: ${why}; requests will fail`,
          `${path}.tls.mode`);
        reported = true;
        break;
      }
    }
  }
}

function checkObservedPlaintext(ctx: AnalysisContext, observed: readonly ObservedPlaintext[]): void {
  for (const o of observed) {
    if (o.clients.length === 0) continue;
    const peer = peerMode(ctx, o.namespace, o.labels, o.port);
    if (peer?.mode !== 'STRICT') continue;
    const total = o.clients.reduce((n, c) => n + c.requests, 0);
    const who = o.clients.slice(0, 3).map((c) => `${c.client} (${c.requests})`).join(', ') + (o.clients.length > 3 ? `, and ${o.clients.length - 3} more` : '');
    ctx.report(peer.pa, 'warning', 'MTLS_PLAINTEXT_CLIENTS',
      `makes ${o.workload} port ${o.port} STRICT, but it took ${total} plaintext request(s) in the last ${o.minutes} min from ${who}: they will be refused (keep PERMISSIVE until \`trellis mtls\` shows none)`,
      'spec.mtls.mode');
  }
}

/** Runs the mTLS checks; `observed` is the proxies' plaintext traffic when a mesh is running. */
export function checkMtls(ctx: AnalysisContext, observed: readonly ObservedPlaintext[] = []): void {
  checkDestinationRuleModes(ctx);
  checkObservedPlaintext(ctx, observed);
}
